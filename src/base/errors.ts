/**
 * The one error registry (fastify's `lib/errors.js` habit): every error the gateway
 * produces has a stable code, an HTTP status and a JSON-RPC error code, so REST surfaces answer
 * `{"error","code","details"}` and MCP surfaces answer JSON-RPC errors from the same entry.
 *
 * JSON-RPC codes: -32700..-32600 from JSON-RPC 2.0; -32000 "overloaded" (the gateway's own admission limit);
 * -32001 matches the MCP SDK's `RequestTimeout` (used for timeouts only); -32002 is MCP's
 * "resource not found". -32005 (circuit open), -32006 (upstream overloaded), -32007
 * (unauthorized), -32008 (forbidden), -32009 (rate limited), -32010 (session not found), -32011
 * (model provider error), -32012 (model provider rate limit) and -32013 (model provider timeout)
 * are this gateway's own: one condition, one code, so a client can tell a lost session (initialize
 * again) from a slow upstream (retry later). README's "Error codes" table lists them all.
 */
export const ERRORS = {
  PARSE_ERROR: { http: 400, rpc: -32700, message: 'Parse error' },
  INVALID_REQUEST: { http: 400, rpc: -32600, message: 'Invalid request' },
  METHOD_NOT_FOUND: { http: 404, rpc: -32601, message: 'Method not found' },
  INVALID_PARAMS: { http: 400, rpc: -32602, message: 'Invalid params' },
  INTERNAL_ERROR: { http: 500, rpc: -32603, message: 'Internal error' },
  OVERLOADED: { http: 503, rpc: -32000, message: 'Gateway overloaded, retry later' },
  UPSTREAM_TIMEOUT: { http: 504, rpc: -32001, message: 'Upstream request timed out' },
  RESOURCE_NOT_FOUND: { http: 404, rpc: -32002, message: 'Resource not found' },
  UPSTREAM_UNAVAILABLE: { http: 502, rpc: -32003, message: 'Upstream not connected' },
  REQUEST_CANCELLED: { http: 499, rpc: -32800, message: 'Request cancelled' },
  SHUTTING_DOWN: { http: 503, rpc: -32004, message: 'Gateway is shutting down' },
  BODY_TOO_LARGE: { http: 413, rpc: -32600, message: 'Request body too large' },
  UNSUPPORTED_MEDIA_TYPE: { http: 415, rpc: -32600, message: 'Content-Type must be application/json' },
  NOT_ACCEPTABLE: { http: 406, rpc: -32600, message: 'Not acceptable' },
  SESSION_REQUIRED: { http: 400, rpc: -32600, message: 'Mcp-Session-Id header is required' },
  /** An unknown or expired `Mcp-Session-Id`: the client must initialize a new session (MCP Streamable HTTP, session management). */
  SESSION_NOT_FOUND: { http: 404, rpc: -32010, message: 'Session not found' },
  UNSUPPORTED_PROTOCOL_VERSION: { http: 400, rpc: -32600, message: 'Unsupported MCP-Protocol-Version' },
  ORIGIN_NOT_ALLOWED: { http: 403, rpc: -32600, message: 'Origin not allowed' },
  METHOD_NOT_ALLOWED: { http: 405, rpc: -32600, message: 'Method not allowed' },
  CONFLICT: { http: 409, rpc: -32600, message: 'Conflict' },
  TOO_MANY_SESSIONS: { http: 503, rpc: -32000, message: 'Too many sessions' },
  NOT_FOUND: { http: 404, rpc: -32601, message: 'Not found' },
  INVALID_JSON: { http: 400, rpc: -32700, message: 'Request body is not valid JSON' },
  VALIDATION_ERROR: { http: 400, rpc: -32602, message: 'Request body is invalid' },
  IMMUTABLE_FIELD: { http: 400, rpc: -32602, message: 'Field cannot be changed' },
  UNSUPPORTED_AUTH_TYPE: { http: 400, rpc: -32602, message: 'Unsupported auth_type' },
  CLIENT_NOT_FOUND: { http: 404, rpc: -32602, message: 'MCP client not found' },
  NAME_CONFLICT: { http: 409, rpc: -32602, message: 'An MCP client with that name exists' },
  TOOL_NOT_FOUND: { http: 404, rpc: -32602, message: 'Tool not found' },
  TOOL_NOT_ALLOWED: { http: 403, rpc: -32602, message: 'Tool not allowed' },
  STORE_UNAVAILABLE: { http: 503, rpc: -32603, message: 'Store unavailable' },
  /** An upstream's circuit breaker is open (or half-open with its trial calls taken): the call was not sent. */
  CIRCUIT_OPEN: { http: 503, rpc: -32005, message: 'Upstream circuit breaker open' },
  /** An upstream's concurrency limit and its queue are full. */
  UPSTREAM_OVERLOADED: { http: 503, rpc: -32006, message: 'Upstream overloaded' },
  /** Missing, unknown, revoked or expired credentials; the reply carries `WWW-Authenticate`. */
  UNAUTHORIZED: { http: 401, rpc: -32007, message: 'Authentication required' },
  /** Valid credentials without the right to this surface (e.g. a virtual key on the management API). */
  FORBIDDEN: { http: 403, rpc: -32008, message: 'Forbidden' },
  /** A per-key rate limit is spent; the reply carries `Retry-After` (developer-mesh "Rate Limiting"). */
  RATE_LIMITED: { http: 429, rpc: -32009, message: 'Rate limit exceeded' },
  /** A well-formed body naming something that does not exist or cannot be used (REST /api/v1). */
  UNPROCESSABLE_ENTITY: { http: 422, rpc: -32602, message: 'Unprocessable entity' },
  /** An unsupported API version (`X-API-Version`, `Accept: application/vnd.mcp.vN+json`). */
  UNSUPPORTED_API_VERSION: { http: 406, rpc: -32600, message: 'Unsupported API version' },
  /** An upstream tool answered with `isError: true` (REST tool actions answer 502). */
  TOOL_EXECUTION_FAILED: { http: 502, rpc: -32603, message: 'The tool reported an error' },
  /** A feature needs configuration that is missing (e.g. the webhook secret). */
  NOT_CONFIGURED: { http: 503, rpc: -32603, message: 'Not configured' },
  /** A signed request whose signature is missing or wrong (webhooks). */
  INVALID_SIGNATURE: { http: 401, rpc: -32007, message: 'Invalid signature' },
  /*
   * Code mode (execute_code): how a sandbox run ended when it did not return a value. They reach
   * the model as a tool result with isError (`CODE: message`), not as JSON-RPC errors.
   */
  /** The run's wall time (`wall_ms`, waiting for tools included) ran out. */
  SANDBOX_TIMEOUT: { http: 422, rpc: -32014, message: 'Code run exceeded its wall time' },
  /** The run executed JavaScript for longer than `cpu_ms`. */
  SANDBOX_CPU_LIMIT: { http: 422, rpc: -32014, message: 'Code run exceeded its CPU budget' },
  /** The engine heap would have grown past `memory_bytes`. */
  SANDBOX_MEMORY_LIMIT: { http: 422, rpc: -32014, message: 'Code run exceeded its memory limit' },
  /** Recursion or nesting deeper than `stack_bytes` allows. */
  SANDBOX_STACK_LIMIT: { http: 422, rpc: -32014, message: 'Code run exceeded its stack limit' },
  /** More tool calls than `max_tool_calls`. */
  SANDBOX_TOOL_CALL_LIMIT: { http: 422, rpc: -32014, message: 'Code run exceeded its tool-call limit' },
  /** Console output plus the result's JSON over `max_output_bytes`. */
  SANDBOX_OUTPUT_LIMIT: { http: 422, rpc: -32014, message: 'Code run exceeded its output limit' },
  /** The execute_code call was cancelled (client cancel, disconnect, session end). */
  SANDBOX_CANCELLED: { http: 499, rpc: -32800, message: 'Code run cancelled' },
  /** The code threw, did not parse, or awaited something that can never settle. */
  SANDBOX_CODE_ERROR: { http: 422, rpc: -32014, message: 'Code run failed' },
  /**
   * A message nested deeper than the limit (`MAX_NESTING_DEPTH` in `./depth.ts`, 128), refused at
   * decode time before anything recursive runs; `details.limit` names the limit.
   */
  NESTING_TOO_DEEP: { http: 400, rpc: -32600, message: 'Nesting too deep' },
  /** A MessagePack 64-bit integer outside ±(2^53 − 1): no exact JSON number; send it as a string. */
  UNSAFE_INTEGER: { http: 400, rpc: -32602, message: 'Integer outside the safe range' },
  /** No model provider serves the requested model (model providers, Responses API, embeddings). */
  MODEL_NOT_FOUND: { http: 404, rpc: -32602, message: 'Model not found' },
  /** A model provider answered with an error (its status and message are in `details`). */
  PROVIDER_ERROR: { http: 502, rpc: -32011, message: 'Model provider error' },
  /** A model provider kept answering 429 through every retry; `details.retry_after_ms` when it said. */
  PROVIDER_RATE_LIMITED: { http: 429, rpc: -32012, message: 'Model provider rate limit' },
  /** A model provider did not answer (or stopped streaming) within its timeout. */
  PROVIDER_TIMEOUT: { http: 504, rpc: -32013, message: 'Model provider timed out' },
  /*
   * MCP 2026-07-28 (the stateless revision), from the range -32020..-32099 the specification
   * reserves for itself: https://modelcontextprotocol.io/specification/2026-07-28/basic/index#error-codes
   */
  /** An `Mcp-Method`/`Mcp-Name`/`MCP-Protocol-Version` header missing, malformed or disagreeing with the body. */
  HEADER_MISMATCH: { http: 400, rpc: -32020, message: 'Header mismatch' },
  /** The request needs a client capability its `_meta` does not declare; `details.requiredCapabilities`. */
  MISSING_CLIENT_CAPABILITY: { http: 400, rpc: -32021, message: 'Missing required client capability' },
  /** A per-request protocol version the gateway does not serve; `details.supported`, `details.requested`. */
  UNSUPPORTED_VERSION: { http: 400, rpc: -32022, message: 'Unsupported protocol version' },
  /** 2026-07-28 requests: a missing or malformed `_meta` (protocol version, client capabilities). */
  INVALID_REQUEST_META: { http: 400, rpc: -32602, message: 'Invalid params: _meta' },
  /** 2026-07-28 requests: `resources/read` of a URI no upstream serves (-32602, not the older -32002). */
  UNKNOWN_RESOURCE: { http: 404, rpc: -32602, message: 'Resource not found' },
  /** 2026-07-28 requests: an `inputResponses` retry whose `requestState` is unknown, expired or not the caller's. */
  INVALID_REQUEST_STATE: { http: 400, rpc: -32602, message: 'Invalid requestState' },
  /**
   * A session-based client's call to a 2026-07-28 upstream that answered `input_required` the
   * gateway cannot translate: an input request of an unknown method, or more rounds than allowed.
   */
  INPUT_REQUIRED_UNRESOLVED: { http: 502, rpc: -32603, message: 'Upstream input request could not be resolved' },
  /**
   * An upstream behind OAuth has no usable authorization for this caller (`auth_type` `oauth` or
   * `per_user_oauth`). JSON-RPC -32042 is MCP's URLElicitationRequiredError (2025-11-25): `data`
   * carries `authorization_url` and `elicitations: [{mode: "url", url, ...}]` for per-user clients.
   */
  OAUTH_AUTHORIZATION_REQUIRED: { http: 403, rpc: -32042, message: 'OAuth authorization required' },
  /** An OAuth step towards an upstream's authorization server failed (discovery, registration, token request); `details.step` names it. */
  OAUTH_ERROR: { http: 502, rpc: -32003, message: 'OAuth with the upstream failed' },
} as const;

export type ErrorCode = keyof typeof ERRORS;

/** A JSON-RPC 2.0 error object. */
export interface JsonRpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

/**
 * An error the gateway raises on purpose. `details` lands in REST `details` and JSON-RPC `data`.
 */
export class GatewayError extends Error {
  override readonly name = 'GatewayError';
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message ?? ERRORS[code].message);
  }

  /** HTTP status from the registry. */
  get status(): number {
    return ERRORS[this.code].http;
  }

  /** The JSON-RPC error object: registry code, this message, `data` = `{code, ...details}`. */
  toJsonRpc(): JsonRpcErrorObject {
    return { code: ERRORS[this.code].rpc, message: this.message, data: { code: this.code, ...this.details } };
  }

  /** The REST body `{"error","code","details"}`. */
  toRest(): { error: string; code: ErrorCode; details: Record<string, unknown> } {
    return { error: this.message, code: this.code, details: this.details ?? {} };
  }
}

/** A JSON-RPC error received from an upstream, passed through with its own code and data. */
export class UpstreamRpcError extends Error {
  override readonly name = 'UpstreamRpcError';
  constructor(readonly rpc: JsonRpcErrorObject) {
    super(rpc.message);
  }
}

/** Maps anything thrown inside request handling to a JSON-RPC error object. */
export function toJsonRpcError(err: unknown): JsonRpcErrorObject {
  if (err instanceof GatewayError) return err.toJsonRpc();
  if (err instanceof UpstreamRpcError) return err.rpc;
  return { code: ERRORS.INTERNAL_ERROR.rpc, message: ERRORS.INTERNAL_ERROR.message };
}
