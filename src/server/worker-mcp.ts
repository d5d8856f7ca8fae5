/**
 * The worker thread's half of the MCP fast path of `server.workers`: decides whether a
 * `POST /mcp` request it received can go to the owner as one compact call (the owner's half is
 * `handlers/mcp/worker-calls.ts`). It does the work the owner's own path would do before the
 * dispatcher — the headers (`Content-Type`, `Accept`, `Mcp-Session-Id`, `MCP-Protocol-Version`,
 * `Host`), the credential (the key's SHA-256 looked up in the owner's pushed copy of the key
 * hashes; a Bearer token shaped like a JWT or OAuth access token goes along for the owner to
 * identify, from its cache of verified tokens), the body's size, first byte and nesting depth —
 * and says "carry" for anything it cannot decide positively: every refusal, Basic credentials,
 * include headers, an `Origin`, a body that is not one JSON object (batches). The body's JSON is
 * parsed once, by the owner, which needs the parsed request to dispatch it: it checks the
 * JSON-RPC framing there and carries back what is not a call of this path (bad JSON,
 * notifications, `initialize`, the 2026-07-28 revision). A carried request takes the owner's full
 * path, so every answer other than a call's result is the owner's own.
 *
 * Credential order as `AccessGate.identify`: `x-bf-vk`, then `Authorization` (a bare key,
 * `Bearer <key>`), then `X-API-Key`.
 */
import { hash } from 'node:crypto';
import { jsonDepthExceeded } from '../codecs/depth.js';
import { isHostAllowed } from '../handlers/mcp/origin.js';
import type { WorkerCall, WorkerMcpState } from '../handlers/mcp/worker-calls.js';
import type { FlatHeaders } from './worker-protocol.js';

/** Longest `Authorization` value the gate reads (longer ones it refuses: carried). */
const MAX_CREDENTIAL_LENGTH = 8192;

/** The headers the fast path reads, from a flat `[name, value, ...]` list (names lower-case). */
interface McpHeaders {
  contentType: string;
  accept: string;
  origin: string;
  host: string;
  session: string;
  version: string;
  authorization: string;
  apiKey: string;
  virtualKey: string;
  include: boolean;
  traceparent: string;
  tracestate: string;
}

function read(headers: FlatHeaders): McpHeaders {
  const h: McpHeaders = { contentType: '', accept: '', origin: '', host: '', session: '', version: '', authorization: '', apiKey: '', virtualKey: '', include: false, traceparent: '', tracestate: '' };
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const v = headers[i + 1] as string;
    switch (headers[i]) {
      case 'content-type':
        h.contentType = v;
        break;
      case 'accept':
        h.accept = v;
        break;
      case 'origin':
        h.origin = v;
        break;
      case 'host':
        h.host = v;
        break;
      case 'mcp-session-id':
        h.session = v;
        break;
      case 'mcp-protocol-version':
        h.version = v;
        break;
      case 'authorization':
        h.authorization = v;
        break;
      case 'x-api-key':
        h.apiKey = v;
        break;
      case 'x-bf-vk':
        h.virtualKey = v;
        break;
      case 'x-bf-mcp-include-clients':
      case 'x-bf-mcp-include-tools':
        if (v !== '') h.include = true;
        break;
      case 'traceparent':
        h.traceparent = v;
        break;
      case 'tracestate':
        h.tracestate = v;
        break;
    }
  }
  return h;
}

function accepts(accept: string, type: string): boolean {
  return accept === '' || accept.includes(type) || accept.includes('*/*');
}

/**
 * The credential the gate would read: a key secret (`key`), a Bearer token the owner identifies
 * (`bearer`: JWT or OAuth access token), or `undefined` when there is none this path takes.
 */
function credential(h: McpHeaders, tokens: boolean): { readonly key: string } | { readonly bearer: string } | undefined {
  if (h.virtualKey !== '') return { key: h.virtualKey };
  const auth = h.authorization;
  if (auth !== '') {
    if (auth.length > MAX_CREDENTIAL_LENGTH) return undefined;
    const space = auth.indexOf(' ');
    if (space < 0) return { key: auth };
    if (auth.slice(0, space).toLowerCase() !== 'bearer') return undefined;
    const value = auth.slice(space + 1).trim();
    if (value === '') return undefined;
    // a JWT or OAuth access token has dots; keys never do
    return tokens && value.includes('.') ? { bearer: value } : { key: value };
  }
  return h.apiKey === '' ? undefined : { key: h.apiKey };
}

/**
 * The call for this request, or `undefined` when it must be carried to the owner whole.
 * @param body the whole body (the request ended).
 */
export function workerCall(state: WorkerMcpState, id: number, headers: FlatHeaders, body: Uint8Array, nowMs: number): WorkerCall | undefined {
  if (body.byteLength > state.maxBodyBytes) return undefined;
  const h = read(headers);
  if (h.origin !== '' || h.include || h.session === '') return undefined;
  if (h.version !== '' && !state.protocolVersions.includes(h.version)) return undefined;
  if (!isHostAllowed(h.host, state.allowedHosts, state.enforceHost)) return undefined;
  if (!h.contentType.toLowerCase().includes('application/json')) return undefined;
  if (!accepts(h.accept, 'application/json') && !accepts(h.accept, 'text/event-stream')) return undefined;
  let key: WorkerCall['key'];
  let bearer = '';
  if (state.authEnabled) {
    const c = credential(h, state.tokens);
    if (c === undefined) return undefined;
    if ('bearer' in c) bearer = c.bearer;
    else {
      const k = state.keys.get(hash('sha256', c.key, 'hex'));
      if (k === undefined || !(nowMs < k.expiresMs)) return undefined;
      key = { kind: k.kind, id: k.id };
    }
  }
  // the JSON-RPC framing (one request, its method, no 2026-07-28 `_meta`) is checked by the owner,
  // which parses the text to dispatch it anyway: a second parse here cost ≈ 1.4 µs per call
  // (JSON.parse internalizes every key and short value). Here only what needs no parse: the first
  // byte opens an object (a batch or anything else goes whole at once) and the nesting depth.
  if (!opensObject(body) || jsonDepthExceeded(body) >= 0) return undefined;
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  const canSse = h.accept.includes('text/event-stream');
  const sseOnly = canSse && !h.accept.includes('application/json') && !h.accept.includes('*/*');
  return { t: 'call', id, session: h.session, key, bearer, body: text, canSse, sseOnly, traceparent: h.traceparent, tracestate: h.tracestate };
}

/** The first byte after JSON whitespace is `{` (RFC 8259 §2: space, tab, line feed, carriage return). */
function opensObject(body: Uint8Array): boolean {
  for (let i = 0; i < body.length; i++) {
    const b = body[i] as number;
    if (b === 0x7b) return true;
    if (b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) return false;
  }
  return false;
}
