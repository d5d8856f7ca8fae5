/**
 * Bodies of the key management API: `POST /api/auth/keys` (API keys, presented as
 * `Authorization: Bearer <key>`, developer-mesh API reference "Authentication",
 * https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md) and `POST /api/auth/virtual-keys` (virtual keys, the ids
 * Bifrost's `vk_configs[].virtual_key_id` names, https://github.com/maximhq/bifrost/blob/main/docs/openapi/schemas/management/mcp.yaml). Rate limit fields
 * are developer-mesh "Rate Limiting"'s three limits. Decoded with io-ts; unknown fields are
 * rejected; every problem is reported with its path (`rate_limits.burst_per_minute: ...`).
 */
import * as t from 'io-ts';
import { isLeft } from 'fp-ts/lib/Either.js';
import { MAX_KEY_NAME_CHARS, TENANT_ID, parseIsoTimestamp } from '../base/ids.js';
import { GatewayError } from '../base/errors.js';
import { formatIoTsErrors } from '../base/io-ts-errors.js';

interface KeyNameBrand {
  readonly KeyName: unique symbol;
}
/** A key's display name: 1..128 characters (Unicode code points). */
export const KeyName = t.brand(
  t.string,
  (s): s is t.Branded<string, KeyNameBrand> => {
    const n = [...s].length;
    return n >= 1 && n <= MAX_KEY_NAME_CHARS;
  },
  'KeyName',
);
export type KeyName = t.TypeOf<typeof KeyName>;

interface TenantIdBrand {
  readonly TenantId: unique symbol;
}
/** A tenant id: 1..128 of `[A-Za-z0-9_.-]`. */
export const TenantId = t.brand(t.string, (s): s is t.Branded<string, TenantIdBrand> => TENANT_ID.test(s), 'TenantId');
export type TenantId = t.TypeOf<typeof TenantId>;

interface PositiveIntegerBrand {
  readonly PositiveInteger: unique symbol;
}
/** A whole number from 1 to `Number.MAX_SAFE_INTEGER`. */
export const PositiveInteger = t.brand(t.number, (n): n is t.Branded<number, PositiveIntegerBrand> => Number.isSafeInteger(n) && n >= 1, 'PositiveInteger');
export type PositiveInteger = t.TypeOf<typeof PositiveInteger>;

interface IsoDateTimeBrand {
  readonly IsoDateTime: unique symbol;
}
/** An ISO-8601 date-time with an offset (`Z` or `±hh:mm`) naming a real calendar instant. */
export const IsoDateTime = t.brand(t.string, (s): s is t.Branded<string, IsoDateTimeBrand> => parseIsoTimestamp(s) !== undefined, 'IsoDateTime');
export type IsoDateTime = t.TypeOf<typeof IsoDateTime>;

/** Per-key overrides of `DEFAULT_RATE_LIMITS`; each field optional. */
export const RateLimitsBody = t.exact(
  t.partial({
    /** Requests per rolling hour. */
    requests_per_hour: PositiveInteger,
    /** Requests per minute (burst). */
    burst_per_minute: PositiveInteger,
    /** Tool executions per hour. */
    tool_executions_per_hour: PositiveInteger,
  }),
);
export type RateLimitsBody = t.TypeOf<typeof RateLimitsBody>;

/** `full`, `search` or `code`: how the key's sessions see the tool catalogue. */
export const ToolModeBody = t.keyof({ full: null, search: null, code: null });

const optionalCommon = { tenant_id: TenantId, rate_limits: RateLimitsBody, expires_at: IsoDateTime, tool_mode: ToolModeBody };

/** `POST /api/auth/keys`: `{name, role?, tenant_id?, rate_limits?, expires_at?, tool_mode?}`. */
export const CreateApiKeyBody = t.exact(
  t.intersection([t.type({ name: KeyName }), t.partial({ role: t.keyof({ admin: null, user: null }), ...optionalCommon })]),
);
export type CreateApiKeyBody = t.TypeOf<typeof CreateApiKeyBody>;

/** `POST /api/auth/virtual-keys`: `{name, tenant_id?, rate_limits?, expires_at?, tool_mode?}` (virtual keys are always `user`). */
export const CreateVirtualKeyBody = t.exact(t.intersection([t.type({ name: KeyName }), t.partial(optionalCommon)]));
export type CreateVirtualKeyBody = t.TypeOf<typeof CreateVirtualKeyBody>;

const API_KEY_FIELDS = ['name', 'role', ...Object.keys(optionalCommon)];
const VIRTUAL_KEY_FIELDS = ['name', ...Object.keys(optionalCommon)];
const RATE_LIMIT_FIELDS = ['requests_per_hour', 'burst_per_minute', 'tool_executions_per_hour'];

/**
 * Decodes a `POST /api/auth/keys` body; `expires_at` must be after `nowMs` (ms since the epoch).
 * @throws GatewayError VALIDATION_ERROR with `details.problems` (`path: what is wrong`), naming
 *   unknown fields too (`rate_limits.per_day: unknown field`).
 */
export function decodeCreateApiKey(body: unknown, nowMs: number): CreateApiKeyBody {
  return decodeWith(CreateApiKeyBody, API_KEY_FIELDS, body, nowMs);
}

/** Decodes a `POST /api/auth/virtual-keys` body (no `role`); otherwise as {@link decodeCreateApiKey}. */
export function decodeCreateVirtualKey(body: unknown, nowMs: number): CreateVirtualKeyBody {
  return decodeWith(CreateVirtualKeyBody, VIRTUAL_KEY_FIELDS, body, nowMs);
}

function decodeWith<A extends { readonly expires_at?: string }>(codec: t.Decoder<unknown, A>, allowed: readonly string[], body: unknown, nowMs: number): A {
  if (!isRecord(body)) fail(['(body): expected a JSON object']);
  const r = codec.decode(body);
  const problems: string[] = [];
  if (isLeft(r)) problems.push(...formatIoTsErrors(r.left, '(body)'));
  problems.push(...unknownKeys(body, allowed, ''));
  problems.push(...unknownKeys(body['rate_limits'], RATE_LIMIT_FIELDS, 'rate_limits.'));
  if (isLeft(r)) fail([...new Set(problems)]);
  const expires = r.right.expires_at;
  if (expires !== undefined && !((parseIsoTimestamp(expires) ?? -Infinity) > nowMs)) {
    problems.push(`expires_at: must be in the future, got ${JSON.stringify(expires)}`);
  }
  if (problems.length > 0) fail([...new Set(problems)]);
  return r.right;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function unknownKeys(value: unknown, allowed: readonly string[], prefix: string): string[] {
  if (!isRecord(value)) return [];
  return Object.keys(value)
    .filter((k) => !allowed.includes(k))
    .map((k) => `${prefix}${k}: unknown field`);
}

function fail(problems: string[]): never {
  throw new GatewayError('VALIDATION_ERROR', `Invalid request body: ${problems.join('; ')}`, { problems });
}
