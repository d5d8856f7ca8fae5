/**
 * Bodies of the MCP client management API (Bifrost MCP schemas, https://github.com/maximhq/bifrost/blob/main/docs/openapi/schemas/management/mcp.yaml:
 * `MCPClientCreateRequest`, `MCPClientUpdateRequest`, `MCPVKConfig`). Decoded with io-ts; unknown
 * fields are rejected; every problem is reported with its path.
 */
import * as t from 'io-ts';
import { isLeft } from 'fp-ts/lib/Either.js';
import { ClientName, StdioConfig } from '../config/schema.js';
import { GatewayError } from '../base/errors.js';
import { formatIoTsErrors } from '../base/io-ts-errors.js';

const AuthTypeAny = t.keyof({ none: null, headers: null, oauth: null, per_user_oauth: null });

export const VkConfigBody = t.intersection([
  t.type({ virtual_key_id: t.string, tools_to_execute: t.array(t.string) }),
  t.partial({ virtual_key_name: t.string }),
]);
export type VkConfigBody = t.TypeOf<typeof VkConfigBody>;

const createCommon = {
  client_id: t.string,
  is_code_mode_client: t.boolean,
  is_ping_available: t.boolean,
  auth_type: AuthTypeAny,
  oauth_config_id: t.string,
  oauth_config: t.UnknownRecord,
  headers: t.record(t.string, t.string),
  tools_to_execute: t.array(t.string),
  tools_to_auto_execute: t.array(t.string),
  disallowed_actions: t.array(t.string),
  allow_on_all_virtual_keys: t.boolean,
  tool_prefix: t.string,
  request_timeout_ms: t.number,
};

/** `POST /api/mcp/client`: discriminated on `connection_type`. */
export const CreateClientBody = t.union([
  t.intersection([t.type({ name: ClientName, connection_type: t.keyof({ http: null, sse: null }), connection_string: t.string }), t.partial(createCommon)]),
  t.intersection([t.type({ name: ClientName, connection_type: t.literal('stdio'), stdio_config: StdioConfig }), t.partial(createCommon)]),
  t.intersection([t.type({ name: ClientName, connection_type: t.literal('inprocess'), inprocess_server: t.string }), t.partial(createCommon)]),
]);
export type CreateClientBody = t.TypeOf<typeof CreateClientBody>;

const CREATE_KEYS: Record<string, readonly string[]> = {
  http: ['name', 'connection_type', 'connection_string', ...Object.keys(createCommon)],
  sse: ['name', 'connection_type', 'connection_string', ...Object.keys(createCommon)],
  stdio: ['name', 'connection_type', 'stdio_config', ...Object.keys(createCommon)],
  inprocess: ['name', 'connection_type', 'inprocess_server', ...Object.keys(createCommon)],
};
const STDIO_KEYS = ['command', 'args', 'envs', 'cwd'];

/** `PUT /api/mcp/client/{id}`: every field optional. */
export const UpdateClientBody = t.partial({
  ...createCommon,
  name: ClientName,
  connection_type: t.string,
  connection_string: t.string,
  stdio_config: StdioConfig,
  inprocess_server: t.string,
  tool_pricing: t.record(t.string, t.number),
  vk_configs: t.array(VkConfigBody),
});
export type UpdateClientBody = t.TypeOf<typeof UpdateClientBody>;
const UPDATE_KEYS = [...Object.keys(createCommon), 'name', 'connection_type', 'connection_string', 'stdio_config', 'inprocess_server', 'tool_pricing', 'vk_configs'];

function unknownKeys(value: unknown, allowed: readonly string[], prefix: string): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [];
  return Object.keys(value)
    .filter((k) => !allowed.includes(k))
    .map((k) => `${prefix}${k}: unknown field`);
}

function fail(problems: string[]): never {
  throw new GatewayError('VALIDATION_ERROR', `Invalid request body: ${problems.join('; ')}`, { problems });
}

/**
 * Decodes a create body: the `connection_type` branch's required fields, then unknown fields.
 * @throws GatewayError VALIDATION_ERROR with `details.problems` (`path: what is wrong`).
 */
export function decodeCreateClient(body: unknown): CreateClientBody {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) fail(['(body): expected a JSON object']);
  const b = body as Record<string, unknown>;
  const ct = b['connection_type'];
  if (typeof ct !== 'string' || !(ct in CREATE_KEYS)) {
    fail([`connection_type: expected one of "http", "sse", "stdio", "inprocess", got ${JSON.stringify(ct ?? null)}`]);
  }
  const branch = CreateClientBody.types[ct === 'stdio' ? 1 : ct === 'inprocess' ? 2 : 0];
  const r = branch.decode(body);
  const problems: string[] = [];
  if (isLeft(r)) problems.push(...formatIoTsErrors(r.left, '(body)'));
  problems.push(...unknownKeys(body, CREATE_KEYS[ct] ?? [], ''));
  if (ct === 'stdio') problems.push(...unknownKeys(b['stdio_config'], STDIO_KEYS, 'stdio_config.'));
  if (problems.length > 0) fail([...new Set(problems)]);
  return body as CreateClientBody;
}

/** Decodes an update body. @throws GatewayError VALIDATION_ERROR naming each bad field. */
export function decodeUpdateClient(body: unknown): UpdateClientBody {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) fail(['(body): expected a JSON object']);
  const r = UpdateClientBody.decode(body);
  const problems: string[] = [];
  if (isLeft(r)) problems.push(...formatIoTsErrors(r.left, '(body)'));
  problems.push(...unknownKeys(body, UPDATE_KEYS, ''));
  const b = body as Record<string, unknown>;
  if (b['stdio_config'] !== undefined) problems.push(...unknownKeys(b['stdio_config'], STDIO_KEYS, 'stdio_config.'));
  const vks = b['vk_configs'];
  if (Array.isArray(vks)) vks.forEach((v, i) => problems.push(...unknownKeys(v, ['virtual_key_id', 'virtual_key_name', 'tools_to_execute'], `vk_configs.${i}.`)));
  if (problems.length > 0) fail([...new Set(problems)]);
  return body as UpdateClientBody;
}
