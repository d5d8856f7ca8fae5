/**
 * The Streamable HTTP header checks of an MCP 2026-07-28 request
 * (https://modelcontextprotocol.io/specification/2026-07-28/basic/transports/streamable-http#server-validation):
 * `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` against the body, and `Mcp-Param-{Name}`
 * against the `tools/call` arguments.
 */
import { isObject, refuse, type Refusal } from './modern-meta.js';

/** Methods whose `Mcp-Name` header mirrors `params.name` or `params.uri`. */
export const NAMED: Readonly<Record<string, 'name' | 'uri'>> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' };

/** Decodes an `Mcp-Name`-style header value (`=?base64?...?=` sentinel form, RFC 9110 visible ASCII otherwise). */
export function decodeHeaderValue(value: string): string | undefined {
  if (value.startsWith('=?base64?') && value.endsWith('?=') && value.length >= 11) {
    const b64 = value.slice(9, -2);
    if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(b64)) return undefined;
    return Buffer.from(b64, 'base64').toString('utf8');
  }
  // visible ASCII, space and tab only
  return /^[\t\x20-\x7e]*$/.test(value) ? value : undefined;
}

/**
 * Checks the Streamable HTTP request headers of a modern request against its body
 * (https://modelcontextprotocol.io/specification/2026-07-28/basic/transports/streamable-http#server-validation).
 * Returns a refusal (HTTP 400, -32020) or undefined.
 */
export function checkHeaders(msg: { method: string; params?: Record<string, unknown> }, headers: { mcpProtocolVersion: string; mcpMethod?: string | undefined; mcpName?: string | undefined }, bodyVersion: string): Refusal | undefined {
  if (headers.mcpProtocolVersion === '') return refuse('HEADER_MISMATCH', 'Header mismatch: the MCP-Protocol-Version header is required');
  if (headers.mcpProtocolVersion !== bodyVersion) {
    return refuse('HEADER_MISMATCH', `Header mismatch: MCP-Protocol-Version header value '${headers.mcpProtocolVersion}' does not match body value '${bodyVersion}'`, { header: 'MCP-Protocol-Version' });
  }
  const method = headers.mcpMethod ?? '';
  if (method === '') return refuse('HEADER_MISMATCH', 'Header mismatch: the Mcp-Method header is required', { header: 'Mcp-Method' });
  if (method !== msg.method) return refuse('HEADER_MISMATCH', `Header mismatch: Mcp-Method header value '${method}' does not match body value '${msg.method}'`, { header: 'Mcp-Method' });
  const field = NAMED[msg.method];
  if (field === undefined) return undefined;
  const raw = headers.mcpName ?? '';
  const body = msg.params?.[field];
  if (raw === '') return refuse('HEADER_MISMATCH', `Header mismatch: the Mcp-Name header is required for ${msg.method}`, { header: 'Mcp-Name' });
  const name = decodeHeaderValue(raw);
  if (name === undefined) return refuse('HEADER_MISMATCH', 'Header mismatch: the Mcp-Name header contains invalid characters', { header: 'Mcp-Name' });
  if (name !== body) {
    return refuse('HEADER_MISMATCH', `Header mismatch: Mcp-Name header value '${name}' does not match body value '${typeof body === 'string' ? body : String(body)}'`, { header: 'Mcp-Name' });
  }
  return undefined;
}

// the annotation reader is shared with the upstream side, which sends these headers
export { paramHeadersOf, type ParamHeaders } from '../../upstreams/era-http-transport.js';
import type { ParamHeaders } from '../../upstreams/era-http-transport.js';

/**
 * Checks `Mcp-Param-{Name}` headers of a `tools/call` against the arguments, for the tool's
 * `x-mcp-header` annotations (https://modelcontextprotocol.io/specification/2026-07-28/basic/transports/streamable-http#custom-headers-from-tool-parameters):
 * a value present in the body needs its header, decoded (base64 sentinel) and equal (numbers
 * compared as numbers); a null or absent value needs none. Returns a refusal (400, -32020) or undefined.
 */
export function checkParamHeaders(annotations: ParamHeaders, args: unknown, headers: Readonly<Record<string, string>> | undefined): Refusal | undefined {
  for (const [name, path] of annotations) {
    let value: unknown = args;
    for (const k of path) value = isObject(value) ? value[k] : undefined;
    const raw = headers?.[name];
    if (value === undefined || value === null) continue;
    if (raw === undefined) return refuse('HEADER_MISMATCH', `Header mismatch: the Mcp-Param-${name} header is required (arguments.${path.join('.')} is set)`, { header: `Mcp-Param-${name}` });
    const decoded = decodeHeaderValue(raw);
    if (decoded === undefined) return refuse('HEADER_MISMATCH', `Header mismatch: the Mcp-Param-${name} header is malformed`, { header: `Mcp-Param-${name}` });
    const same = typeof value === 'number' ? Number(decoded) === value : typeof value === 'boolean' ? decoded === String(value) : decoded === value;
    if (!same) return refuse('HEADER_MISMATCH', `Header mismatch: Mcp-Param-${name} header value does not match arguments.${path.join('.')}`, { header: `Mcp-Param-${name}` });
  }
  return undefined;
}
