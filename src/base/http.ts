/**
 * HTTP inputs and effects. The uWS server turns each request into an {@link HttpInput} (headers
 * copied out of the uWS request, body read in full and copied), feeds it into the central stream,
 * and carries out the {@link HttpEffect}s a handler returns. Handlers never touch uWS.
 */
import type { RequestAuth } from './access.js';

/** The request headers handlers read, lower-case names, `''` when absent. */
export interface HttpHeaders {
  readonly accept: string;
  readonly contentType: string;
  readonly origin: string;
  readonly host: string;
  readonly mcpSessionId: string;
  readonly mcpProtocolVersion: string;
  /** MCP 2026-07-28 `Mcp-Method` / `Mcp-Name` (absent in inputs built by hand). */
  readonly mcpMethod?: string;
  readonly mcpName?: string;
  /** MCP 2026-07-28 `Mcp-Param-{Name}` headers of a `tools/call`: lower-case name → raw value. */
  readonly mcpParams?: Readonly<Record<string, string>>;
  readonly lastEventId: string;
  readonly authorization: string;
  /** `X-API-Key`. */
  readonly apiKey: string;
  /** `x-bf-vk`: a virtual key. */
  readonly virtualKey: string;
  /** `x-bf-mcp-include-clients`. */
  readonly includeClients: string;
  /** `x-bf-mcp-include-tools`. */
  readonly includeTools: string;
  /** W3C Trace Context `traceparent` / `tracestate` (absent or `''` when not sent). */
  readonly traceparent?: string;
  readonly tracestate?: string;
  /** The client's address, read only for Basic logins (`''` otherwise). */
  readonly remoteAddress: string;
  /** `X-API-Version` (REST /api/v1 version negotiation). */
  readonly apiVersion: string;
  /** `X-GitHub-Event`: the GitHub webhook event name (`push`, `ping`, ...). */
  readonly githubEvent: string;
  /** `X-GitHub-Delivery`: the GUID of a GitHub webhook delivery (replay detection). */
  readonly githubDelivery: string;
  /** `Cookie` (the dashboard's session cookie); absent in inputs built by hand. */
  readonly cookie?: string;
  /** `X-Hub-Signature-256`: `sha256=<hex HMAC-SHA256 of the raw body>` of a GitHub webhook delivery. */
  readonly hubSignature256: string;
  /** `x-tributary-tool-mode`: the tool mode (`full`, `search`, `code`) a new MCP session asks for. */
  readonly toolMode: string;
}

/** A field of {@link HttpHeaders}: what a route declares it reads (`RouteSpec.headers`). */
export type HeaderField = keyof HttpHeaders;

/**
 * Every header field, each with the request header it is read from (lower case; `mcpParams`
 * stands for every `mcp-param-*` header; `remoteAddress` is the client's address, not a header).
 * The order fixes each field's bit in a route's header mask.
 */
export const HEADER_NAMES: Readonly<Record<HeaderField, string>> = {
  accept: 'accept',
  contentType: 'content-type',
  origin: 'origin',
  host: 'host',
  mcpSessionId: 'mcp-session-id',
  mcpProtocolVersion: 'mcp-protocol-version',
  mcpMethod: 'mcp-method',
  mcpName: 'mcp-name',
  mcpParams: 'mcp-param-*',
  lastEventId: 'last-event-id',
  authorization: 'authorization',
  apiKey: 'x-api-key',
  virtualKey: 'x-bf-vk',
  includeClients: 'x-bf-mcp-include-clients',
  includeTools: 'x-bf-mcp-include-tools',
  traceparent: 'traceparent',
  tracestate: 'tracestate',
  remoteAddress: '(client address)',
  apiVersion: 'x-api-version',
  githubEvent: 'x-github-event',
  githubDelivery: 'x-github-delivery',
  cookie: 'cookie',
  hubSignature256: 'x-hub-signature-256',
  toolMode: 'x-tributary-tool-mode',
};

export const HEADER_FIELDS = Object.keys(HEADER_NAMES) as readonly HeaderField[];

/**
 * The credential headers the access gate reads (API key, virtual key, Bearer/Basic, include
 * filters). With a Basic `authorization` the client's address is read too (failed logins are
 * throttled per address).
 */
export const CREDENTIAL_HEADERS: readonly HeaderField[] = ['authorization', 'apiKey', 'virtualKey', 'includeClients', 'includeTools'];

/** {@link HttpHeaders} being filled in: every string field writable and present. */
export type MutableHeaders = { -readonly [K in Exclude<keyof HttpHeaders, 'mcpParams'>]-?: string } & { mcpParams?: Record<string, string> };

/**
 * A fresh, writable set of request headers with every field `''` (what a request that sent none
 * of them has); one object literal, so filling it is as cheap as building it by hand.
 */
export function emptyHeaders(): MutableHeaders {
  return {
  accept: '',
  contentType: '',
  origin: '',
  host: '',
  mcpSessionId: '',
  mcpProtocolVersion: '',
  mcpMethod: '',
  mcpName: '',
  lastEventId: '',
  authorization: '',
  apiKey: '',
  virtualKey: '',
  includeClients: '',
  includeTools: '',
  traceparent: '',
  tracestate: '',
  apiVersion: '',
  githubEvent: '',
  githubDelivery: '',
  hubSignature256: '',
  toolMode: '',
  cookie: '',
  remoteAddress: '',
  };
}

/** The headers of a route that reads none: every field `''`. */
export const EMPTY_HEADERS: HttpHeaders = Object.freeze(emptyHeaders());

export interface HttpInput {
  /** Upper-case method. */
  readonly method: string;
  /** Path without the query string. */
  readonly path: string;
  readonly query: string;
  readonly headers: HttpHeaders;
  /** The whole body (POST/PUT), owned by the handler. */
  readonly body: Buffer | undefined;
  /**
   * The caller and what it may use, set by the server's access gate before the handler runs
   * (`undefined` only in handler unit tests that build inputs by hand).
   */
  readonly auth?: RequestAuth;
}

export type HeaderList = readonly (readonly [string, string])[];

/**
 * What a handler asks the server to do. A handler's Observable emits either one `reply`, or
 * `sse-start`, any number of `sse-data`, and `end`; then completes. The server unsubscribes when
 * the client goes away: the handler's teardown must release and cancel whatever it holds.
 */
export type HttpEffect =
  | { readonly kind: 'reply'; readonly status: number; readonly headers: HeaderList; readonly body: string }
  | { readonly kind: 'sse-start'; readonly headers: HeaderList }
  | { readonly kind: 'sse-data'; readonly chunk: string }
  | { readonly kind: 'end' };

export const JSON_HEADERS: HeaderList = [['Content-Type', 'application/json']];

/** A JSON reply effect. */
export function jsonReply(status: number, body: unknown, headers: HeaderList = JSON_HEADERS): HttpEffect {
  return { kind: 'reply', status, headers, body: typeof body === 'string' ? body : JSON.stringify(body) };
}
