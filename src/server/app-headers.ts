/**
 * Reading the request headers a route declares (`RouteSpec.headers`) out of a uWS request, in one
 * pass; no other header is copied.
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { EMPTY_HEADERS, HEADER_FIELDS, emptyHeaders, type HeaderField, type HttpHeaders } from '../base/http.js';

/** The bit of `field` in a header mask (`RouteEntry.headerMask`). */
const bit = (field: HeaderField): number => 1 << HEADER_FIELDS.indexOf(field);
const ACCEPT = bit('accept');
const CONTENT_TYPE = bit('contentType');
const ORIGIN = bit('origin');
const HOST = bit('host');
const MCP_SESSION_ID = bit('mcpSessionId');
const MCP_PROTOCOL_VERSION = bit('mcpProtocolVersion');
const MCP_METHOD = bit('mcpMethod');
const MCP_NAME = bit('mcpName');
const MCP_PARAMS = bit('mcpParams');
const LAST_EVENT_ID = bit('lastEventId');
const AUTHORIZATION = bit('authorization');
const API_KEY = bit('apiKey');
const VIRTUAL_KEY = bit('virtualKey');
const INCLUDE_CLIENTS = bit('includeClients');
const INCLUDE_TOOLS = bit('includeTools');
const TRACEPARENT = bit('traceparent');
const TRACESTATE = bit('tracestate');
const REMOTE_ADDRESS = bit('remoteAddress');
const API_VERSION = bit('apiVersion');
const GITHUB_EVENT = bit('githubEvent');
const GITHUB_DELIVERY = bit('githubDelivery');
const COOKIE = bit('cookie');
const HUB_SIGNATURE_256 = bit('hubSignature256');
const TOOL_MODE = bit('toolMode');

/**
 * Copies the headers of `mask` (the route's declared headers and those its access check reads)
 * out of the uWS request (valid only in this callback); every other field stays `''`. A route
 * that reads none gets the shared {@link EMPTY_HEADERS} without a look at the request. Otherwise
 * one `forEach` over what the client sent: one native call per header present, instead of one
 * `getHeader` per name we know (most of them for headers a request does not carry). The first
 * occurrence of a repeated header wins, as with `getHeader`. Header names arrive lower-cased from
 * uWS. The client's address (`remoteAddress`) is read when declared, and for Basic logins (the
 * gate throttles failed ones per address).
 */
export function readHeaders(req: HttpRequest, res: HttpResponse, mask: number): HttpHeaders {
  if (mask === 0) return EMPTY_HEADERS;
  const h = emptyHeaders();
  req.forEach((name, value) => {
    switch (name) {
      case 'accept':
        if ((mask & ACCEPT) !== 0 && h.accept === '') h.accept = value;
        break;
      case 'content-type':
        if ((mask & CONTENT_TYPE) !== 0 && h.contentType === '') h.contentType = value;
        break;
      case 'origin':
        if ((mask & ORIGIN) !== 0 && h.origin === '') h.origin = value;
        break;
      case 'host':
        if ((mask & HOST) !== 0 && h.host === '') h.host = value;
        break;
      case 'mcp-session-id':
        if ((mask & MCP_SESSION_ID) !== 0 && h.mcpSessionId === '') h.mcpSessionId = value;
        break;
      case 'mcp-protocol-version':
        if ((mask & MCP_PROTOCOL_VERSION) !== 0 && h.mcpProtocolVersion === '') h.mcpProtocolVersion = value;
        break;
      case 'last-event-id':
        if ((mask & LAST_EVENT_ID) !== 0 && h.lastEventId === '') h.lastEventId = value;
        break;
      case 'mcp-method':
        if ((mask & MCP_METHOD) !== 0 && h.mcpMethod === '') h.mcpMethod = value;
        break;
      case 'mcp-name':
        if ((mask & MCP_NAME) !== 0 && h.mcpName === '') h.mcpName = value;
        break;
      case 'authorization':
        if ((mask & AUTHORIZATION) !== 0 && h.authorization === '') h.authorization = value;
        break;
      case 'x-api-key':
        if ((mask & API_KEY) !== 0 && h.apiKey === '') h.apiKey = value;
        break;
      case 'x-bf-vk':
        if ((mask & VIRTUAL_KEY) !== 0 && h.virtualKey === '') h.virtualKey = value;
        break;
      case 'x-bf-mcp-include-clients':
        if ((mask & INCLUDE_CLIENTS) !== 0 && h.includeClients === '') h.includeClients = value;
        break;
      case 'x-bf-mcp-include-tools':
        if ((mask & INCLUDE_TOOLS) !== 0 && h.includeTools === '') h.includeTools = value;
        break;
      case 'traceparent':
        if ((mask & TRACEPARENT) !== 0 && h.traceparent === '') h.traceparent = value;
        break;
      case 'tracestate':
        if ((mask & TRACESTATE) !== 0 && h.tracestate === '') h.tracestate = value;
        break;
      case 'x-api-version':
        if ((mask & API_VERSION) !== 0 && h.apiVersion === '') h.apiVersion = value;
        break;
      case 'x-github-event':
        if ((mask & GITHUB_EVENT) !== 0 && h.githubEvent === '') h.githubEvent = value;
        break;
      case 'x-github-delivery':
        if ((mask & GITHUB_DELIVERY) !== 0 && h.githubDelivery === '') h.githubDelivery = value;
        break;
      case 'x-hub-signature-256':
        if ((mask & HUB_SIGNATURE_256) !== 0 && h.hubSignature256 === '') h.hubSignature256 = value;
        break;
      case 'x-tributary-tool-mode':
        if ((mask & TOOL_MODE) !== 0 && h.toolMode === '') h.toolMode = value;
        break;
      case 'cookie':
        if ((mask & COOKIE) !== 0 && h.cookie === '') h.cookie = value;
        break;
      default:
        // MCP 2026-07-28 `Mcp-Param-{Name}` (x-mcp-header tool arguments), first occurrence wins
        if ((mask & MCP_PARAMS) !== 0 && name.startsWith('mcp-param-')) {
          const params = (h.mcpParams ??= {});
          const key = name.slice(10);
          if (!Object.hasOwn(params, key)) params[key] = value;
        }
        break;
    }
  });
  // only Basic logins and routes that declare it (the dashboard's sign-in) need it: failed attempts are throttled per address
  const authorization = h.authorization;
  if ((mask & REMOTE_ADDRESS) !== 0 || (authorization.length > 6 && authorization.slice(0, 6).toLowerCase() === 'basic ')) {
    h.remoteAddress = Buffer.from(res.getRemoteAddressAsText()).toString();
  }
  return h;
}
