/**
 * The params of the orchestration methods on `/ws` (developer-mesh "Agent Orchestration
 * Messages", https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md): one io-ts codec per message, decoded at the boundary
 * with unknown fields refused ({@link decodeParams}); inside, plain types.
 */
import * as t from 'io-ts';
import { isLeft } from 'fp-ts/lib/Either.js';
import { GatewayError } from '../../base/errors.js';
import { formatIoTsErrors } from '../../base/io-ts-errors.js';
import { unknownFields } from '../../base/unknown-fields.js';
import { withSchema, isJsonObject, jsonByteLength } from '../../codecs/schema.js';

/** Largest task `payload`, `result` or update `message`, in bytes of UTF-8 JSON (1 MiB). */
export const TASK_JSON_MAX_BYTES = 1024 * 1024;

function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/** A string of `min..max` UTF-16 units, optionally without control characters; the name says so in errors. */
function str(min: number, max: number, description: string, noControl = true): t.Type<string, string, unknown> {
  const ok = (u: unknown): u is string => typeof u === 'string' && u.length >= min && u.length <= max && !(noControl && hasControl(u));
  const codec = new t.Type<string, string, unknown>(`string of ${min}..${max} characters${noControl ? ' without control characters' : ''}`, ok, (u, c) => (ok(u) ? t.success(u) : t.failure(u, c)), t.identity);
  return withSchema(codec, { type: 'string', minLength: min, maxLength: max, description });
}

/** An array of `item`, at most `max` entries. */
function arr<C extends t.Mixed>(item: C, max: number): t.Type<t.TypeOf<C>[], t.TypeOf<C>[], unknown> {
  const all = t.array(item);
  return new t.Type<t.TypeOf<C>[], t.TypeOf<C>[], unknown>(
    `array of at most ${max} entries`,
    (u): u is t.TypeOf<C>[] => all.is(u) && u.length <= max,
    (u, c) => (Array.isArray(u) && u.length > max ? t.failure(u, c) : all.validate(u, c)),
    t.identity,
  );
}



/** Any JSON object of at most {@link TASK_JSON_MAX_BYTES}. */
const JsonObject = new t.Type<Record<string, unknown>, Record<string, unknown>, unknown>(
  `JSON object of at most ${TASK_JSON_MAX_BYTES} bytes`,
  (u): u is Record<string, unknown> => isJsonObject(u) && jsonByteLength(u) <= TASK_JSON_MAX_BYTES,
  (u, c) => (isJsonObject(u) && jsonByteLength(u) <= TASK_JSON_MAX_BYTES ? t.success(u) : t.failure(u, c)),
  t.identity,
);

/** Any JSON value of at most {@link TASK_JSON_MAX_BYTES} (a task result). */
const JsonValue = new t.Type<unknown, unknown, unknown>(
  `JSON value of at most ${TASK_JSON_MAX_BYTES} bytes`,
  (u): u is unknown => jsonByteLength(u) <= TASK_JSON_MAX_BYTES,
  (u, c) => (jsonByteLength(u) <= TASK_JSON_MAX_BYTES ? t.success(u) : t.failure(u, c)),
  t.identity,
);

/** Agent ids: 1..128 of `[A-Za-z0-9_.:-]` (`agent-<uuid>` when the gateway picks one). */
export const AGENT_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
const AgentId = new t.Type<string, string, unknown>(
  'agent id of 1..128 characters [A-Za-z0-9_.:-]',
  (u): u is string => typeof u === 'string' && AGENT_ID_PATTERN.test(u),
  (u, c) => (typeof u === 'string' && AGENT_ID_PATTERN.test(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
);
const TaskId = str(1, 200, 'A task id, `task-<uuid>`');
const Capability = str(1, 200, 'A capability, e.g. `code_analysis`');
const Capabilities = arr(Capability, 100);

/** Task priorities as a codec. */
export const Priority = t.keyof({ low: null, normal: null, high: null, critical: null }, 'low|normal|high|critical');

/** `agent.register`: `{name, capabilities, model?, agent_id?}` (developer-mesh "Agent Registration"). */
export const RegisterParams = t.exact(
  t.intersection([t.type({ name: str(1, 200, 'Display name'), capabilities: Capabilities }), t.partial({ model: str(1, 200, 'Model id or name'), agent_id: AgentId })]),
  'RegisterParams',
);
export type RegisterParams = t.TypeOf<typeof RegisterParams>;

/** `agent.status`: `{status: available|busy|offline}`. */
export const StatusParams = t.exact(t.type({ status: t.keyof({ available: null, busy: null, offline: null }, 'available|busy|offline') }), 'StatusParams');
export type StatusParams = t.TypeOf<typeof StatusParams>;

/** `agent.heartbeat`: no params (`{}` or none). */
export const HeartbeatParams = t.exact(t.type({}), 'HeartbeatParams');

/** `task.assign`: `{type, priority?, required_capabilities?, payload?, agent_id?}`; priority defaults to `normal`. */
export const AssignParams = t.exact(
  t.intersection([
    t.type({ type: str(1, 200, 'What kind of task, e.g. `code_review`') }),
    t.partial({ priority: Priority, required_capabilities: Capabilities, payload: JsonObject, agent_id: AgentId }),
  ]),
  'AssignParams',
);
export type AssignParams = t.TypeOf<typeof AssignParams>;

const Progress = new t.Type<number, number, unknown>(
  'number 0..100',
  (u): u is number => typeof u === 'number' && u >= 0 && u <= 100,
  (u, c) => (typeof u === 'number' && u >= 0 && u <= 100 ? t.success(u) : t.failure(u, c)),
  t.identity,
);

/**
 * `task.update`: `{task_id, status?, progress?, message?}`. `status` `in_progress` (the usual),
 * or `completed` / `failed` as shorthands of `task.complete` / `task.fail` (message = the error).
 */
export const UpdateParams = t.exact(
  t.intersection([
    t.type({ task_id: TaskId }),
    t.partial({ status: t.keyof({ in_progress: null, completed: null, failed: null }, 'in_progress|completed|failed'), progress: Progress, message: str(0, 4000, 'Free text', false) }),
  ]),
  'UpdateParams',
);
export type UpdateParams = t.TypeOf<typeof UpdateParams>;

/** `task.complete`: `{task_id, result?}` (any JSON value up to 1 MiB). */
export const CompleteParams = t.exact(t.intersection([t.type({ task_id: TaskId }), t.partial({ result: JsonValue })]), 'CompleteParams');
export type CompleteParams = t.TypeOf<typeof CompleteParams>;

/** `task.fail`: `{task_id, error, retry?}`; with `retry: true` the task is re-queued while attempts remain. */
export const FailParams = t.exact(t.intersection([t.type({ task_id: TaskId, error: str(1, 4000, 'What went wrong', false) }), t.partial({ retry: t.boolean })]), 'FailParams');
export type FailParams = t.TypeOf<typeof FailParams>;

/**
 * Decodes the params of `method` with `codec`, refusing unknown fields (missing params = `{}`).
 * @throws GatewayError INVALID_PARAMS (JSON-RPC -32602) whose message and `details.problems` name
 *   every bad or unknown field by path (`params.priority: expected low|normal|high|critical, got "urgent"`).
 */
export function decodeParams<C extends t.Mixed>(codec: C, params: Record<string, unknown> | undefined, method: string): t.TypeOf<C> {
  const value = params ?? {};
  const r = codec.decode(value);
  const problems = isLeft(r) ? formatIoTsErrors(r.left, 'params').map((p) => (p.startsWith('params') ? p : `params.${p}`)) : [];
  for (const u of unknownFields(codec, value, 'params.')) problems.push(u);
  if (problems.length > 0) {
    throw new GatewayError('INVALID_PARAMS', `Invalid params for ${method}: ${problems.join('; ')}`, { method, problems: [...new Set(problems)] });
  }
  return (r as { right: t.TypeOf<C> }).right;
}
