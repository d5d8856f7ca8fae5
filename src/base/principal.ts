/**
 * Who is calling, as the access-control layer decides it. Every surface (HTTP routes,
 * `/mcp`, WebSocket upgrades) turns the request's credentials into one {@link Principal}; handlers
 * read it, never the credentials. Nothing here holds a secret: ids only.
 */

/** Per-key rate limits (developer-mesh "Rate Limiting": 1000/hour, burst 50/minute, tool executions 100/hour). */
export interface RateLimitSettings {
  /** Requests (HTTP requests and WebSocket messages) per rolling hour window. */
  readonly requests_per_hour: number;
  /** Requests per minute window: the burst limit. */
  readonly burst_per_minute: number;
  /** Tool executions (`tools/call`, `/v1/mcp/tool/execute`) per hour window. */
  readonly tool_executions_per_hour: number;
}

export const DEFAULT_RATE_LIMITS: RateLimitSettings = { requests_per_hour: 1000, burst_per_minute: 50, tool_executions_per_hour: 100 };

/**
 * How the caller authenticated: `anonymous` (auth disabled), `admin` (Basic with the admin user),
 * `api_key` (a gateway-issued API key), `jwt` (a verified JWT), `virtual_key` (a virtual key).
 */
export type PrincipalKind = 'anonymous' | 'admin' | 'api_key' | 'jwt' | 'virtual_key';

/** `admin` may use the management API; `user` may use MCP surfaces, tool execution and feeds. */
export type Role = 'admin' | 'user';

export interface Principal {
  readonly kind: PrincipalKind;
  /**
   * Stable, non-secret id used for rate limiting, logs and session ownership:
   * `key:<id>`, `vk:<id>`, `jwt:<sub>`, `admin:<username>` or `anonymous`.
   */
  readonly id: string;
  /** Tenant whose data this caller sees (`default` unless the key or token says otherwise). */
  readonly tenantId: string;
  readonly role: Role;
  /** Display name of the key or user, when there is one. */
  readonly name?: string;
  /** For virtual keys: the id `vk_configs[].virtual_key_id` refers to. */
  readonly virtualKeyId?: string;
  /** This caller's limits; `undefined` = not rate-limited (auth disabled). */
  readonly limits?: RateLimitSettings;
  /** The tool mode of the key (`tool_mode`), when it has one; sessions may override it. */
  readonly toolMode?: ToolMode;
}

/**
 * How a caller sees the tool catalogue: `full` (every allowed tool in `tools/list`), `search`
 * (meta-tools `search_tools`, `describe_tools`, `call_tool`) or `code` (`search_tools`,
 * `describe_tools`, `execute_code`). See Anthropic's tool search tool
 * (https://docs.claude.com/en/docs/agents-and-tools/tool-use/tool-search-tool) and Cloudflare's
 * code mode (https://blog.cloudflare.com/code-mode/).
 */
export type ToolMode = 'full' | 'search' | 'code';

/** Every tool mode, for validation. */
export const TOOL_MODES: readonly ToolMode[] = ['full', 'search', 'code'];

/** Whether `value` names a tool mode. */
export function isToolMode(value: unknown): value is ToolMode {
  return value === 'full' || value === 'search' || value === 'code';
}

/** The principal of every request while auth is disabled. */
export const ANONYMOUS: Principal = { kind: 'anonymous', id: 'anonymous', tenantId: 'default', role: 'admin' };

/**
 * Why a credential was refused. Reported in error `details.reason` and as a metrics label; never
 * carries the credential itself.
 */
export type AuthFailureReason =
  | 'missing_credentials'
  | 'malformed_credentials'
  | 'unknown_key'
  | 'revoked_key'
  | 'expired_key'
  | 'invalid_token'
  | 'expired_token'
  | 'token_not_yet_valid'
  | 'bad_password';

/** A refused credential. `message` is safe to show to the caller and to log. */
export class AuthError extends Error {
  override readonly name = 'AuthError';
  constructor(
    readonly reason: AuthFailureReason,
    message: string,
  ) {
    super(message);
  }
}
