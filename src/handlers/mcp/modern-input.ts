/**
 * A session-based (2025-era) client calling a 2026-07-28 upstream whose request answers
 * `input_required` (https://modelcontextprotocol.io/specification/2026-07-28/basic/patterns/mrtr):
 * that client cannot retry with `inputResponses`, so the gateway does it on its behalf. Each input
 * request becomes the server→client request the client knows (`elicitation/create`,
 * `sampling/createMessage`, `roots/list`) on the client's own session, and the upstream request is
 * sent again with the answers under the keys the upstream chose and its `requestState` echoed
 * verbatim, until the upstream completes — the same translation the SDK v2 server applies to its
 * own 2025-era clients ("legacy shim").
 */
import { GatewayError } from '../../base/errors.js';
import type { JsonObject } from '../../upstreams/upstream.js';

/** Rounds of `input_required` one downstream request may go through before it fails. */
export const MAX_INPUT_ROUNDS = 8;

/** The server→client requests an input request may be, and the client capability each needs. */
const INPUT_METHODS: Readonly<Record<string, string>> = {
  'elicitation/create': 'elicitation',
  'sampling/createMessage': 'sampling',
  'roots/list': 'roots',
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Whether `result` is a 2026-07-28 `input_required` result. */
export function isInputRequired(result: JsonObject): boolean {
  return result['resultType'] === 'input_required';
}

/** Asks the downstream client one server→client request on its session; rejects with its error. */
export type AskClient = (method: string, params: JsonObject | undefined) => Promise<JsonObject>;

/** Sends the upstream request again with `inputResponses` and `requestState` (absent: none). */
export type RetryUpstream = (inputResponses: JsonObject, requestState: string | undefined) => Promise<JsonObject>;

/**
 * Resolves `first` (an `input_required` result) for a session-based client: asks the client every
 * input request (all of one round at once), retries the upstream with the answers, and repeats
 * until a complete result. The input requests of one round are asked concurrently.
 * @throws GatewayError MISSING_CLIENT_CAPABILITY (-32021) when an input request needs a capability
 *   the client did not declare; INPUT_REQUIRED_UNRESOLVED for an input request of another method
 *   or after `maxRounds` rounds; the client's own error when it refuses a request.
 */
export async function answerForSession(first: JsonObject, declared: Record<string, unknown>, ask: AskClient, retry: RetryUpstream, maxRounds = MAX_INPUT_ROUNDS): Promise<JsonObject> {
  let result = first;
  for (let round = 1; isInputRequired(result); round++) {
    if (round > maxRounds) {
      throw new GatewayError('INPUT_REQUIRED_UNRESOLVED', `The upstream still asked for client input after ${maxRounds} rounds`, { rounds: maxRounds });
    }
    const requests = isObject(result['inputRequests']) ? result['inputRequests'] : {};
    const state = typeof result['requestState'] === 'string' ? result['requestState'] : undefined;
    const entries = Object.entries(requests);
    for (const [key, req] of entries) {
      const method = isObject(req) ? req['method'] : undefined;
      const cap = typeof method === 'string' && Object.hasOwn(INPUT_METHODS, method) ? INPUT_METHODS[method] : undefined;
      if (cap === undefined) throw new GatewayError('INPUT_REQUIRED_UNRESOLVED', `The upstream asked for input "${key}" with an unsupported method ${String(method)}`, { key, method });
      if (declared[cap] === undefined && method !== 'roots/list') {
        throw new GatewayError('MISSING_CLIENT_CAPABILITY', `The upstream needs the client capability "${cap}" (it asked ${String(method)}), which this client did not declare`, {
          requiredCapabilities: { [cap]: {} },
        });
      }
    }
    const answers = await Promise.all(
      entries.map(([, req]) => {
        const r = req as Record<string, unknown>;
        const method = r['method'] as string;
        // a client without the roots capability has no roots to give (the relay answers the same)
        if (method === 'roots/list' && declared['roots'] === undefined) return Promise.resolve<JsonObject>({ roots: [] });
        return ask(method, isObject(r['params']) ? r['params'] : undefined);
      }),
    );
    const inputResponses: JsonObject = {};
    entries.forEach(([key], i) => {
      inputResponses[key] = answers[i];
    });
    result = await retry(inputResponses, state);
  }
  return result;
}
