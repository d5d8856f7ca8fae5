/**
 * What a modern call that waits for client input holds between its `input_required` answer and
 * the client's retry with `inputResponses`
 * (https://modelcontextprotocol.io/specification/2026-07-28/basic/patterns/mrtr): the
 * `requestState` format, the channel that turns relayed server→client requests into input
 * requests, and the parked call's state.
 */
import type { JsonRpcId, JsonRpcResponse } from '../../codecs/jsonrpc.js';
import type { JsonObject } from '../../upstreams/upstream.js';
import type { InflightCall, McpSession, OutboundChannel } from './session.js';

/** Requests that may answer `input_required` (MRTR "Supported Requests"). */
export const MRTR_METHODS: ReadonlySet<string> = new Set(['tools/call', 'prompts/get', 'resources/read']);

/**
 * Prefix of the `requestState` values the gateway issues (an upstream's own states pass through).
 * A state is `tg1.<random>.<issued at, ms since the epoch, base 36>`: the time lets a retry that
 * finds no parked call be told whether its state expired or was never parked in this process.
 */
export const STATE_PREFIX = 'tg1.';

/** Why a gateway-issued `requestState` found no parked call, from the issue time it carries. */
export function missingStateReason(state: string, timeoutMs: number, now: number): { reason: 'expired' | 'unknown'; message: string } {
  const issued = parseInt(state.slice(state.lastIndexOf('.') + 1), 36);
  if (Number.isFinite(issued) && issued <= now && now - issued > timeoutMs) {
    return { reason: 'expired', message: `Invalid requestState: expired (the call waited ${timeoutMs} ms for this retry and was cancelled)` };
  }
  return {
    reason: 'unknown',
    message:
      'Invalid requestState: no call is waiting under it in this gateway process — it was answered already, or it was issued by another gateway process (a call waiting for inputResponses lives in the memory of the process that issued its state)',
  };
}

/** Server→client methods a modern client answers through `inputRequests`, and the capability each needs. */
export const INPUT_CAPABILITY: Readonly<Record<string, string>> = {
  'elicitation/create': 'elicitation',
  'sampling/createMessage': 'sampling',
  'roots/list': 'roots',
};


/**
 * Where a modern call's related messages go: the current HTTP response (or WebSocket), swapped
 * when the call is resumed by an `inputResponses` retry. Log messages pass only when the request
 * named a log level; a server→client request is never sent as such — it is handed to `onInput`,
 * which turns it into an `input_required` result.
 */
export class ModernChannel implements OutboundChannel {
  target: OutboundChannel | undefined;
  constructor(
    target: OutboundChannel | undefined,
    private readonly logs: boolean,
    readonly onInput: (request: { id: JsonRpcId; method: string; params?: JsonObject }) => void,
  ) {
    this.target = target;
  }

  send(message: object): boolean {
    const m = message as { id?: JsonRpcId; method?: string; params?: JsonObject };
    if (m.method !== undefined && m.id !== undefined) {
      this.onInput({ id: m.id, method: m.method, ...(m.params ? { params: m.params } : {}) });
      return true;
    }
    if (m.method === 'notifications/message' && !this.logs) return true;
    return this.target?.send(message) ?? false;
  }
}

/** A modern call that may wait for the client's `inputResponses` (a legacy upstream asked a server→client request). */
export interface CallState {
  readonly session: McpSession;
  readonly call: InflightCall;
  readonly channel: ModernChannel;
  readonly method: string;
  /** `params.name` / `params.uri` of the original request: a retry must name the same. */
  readonly name: unknown;
  readonly principal: string | undefined;
  readonly declared: Record<string, unknown>;
  /** The dispatcher's answer, once the call ends. */
  readonly done: Promise<JsonRpcResponse>;
  /** Settles the downstream request being answered now (the original, or the latest retry). */
  next: (outcome: Outcome) => void;
  /** The `requestState` while parked. */
  key: string | undefined;
  /** Input request key → the dispatcher's server→client request id, and what was asked. */
  readonly keys: Map<string, JsonRpcId>;
  readonly asked: Map<string, JsonObject>;
  timer: NodeJS.Timeout | undefined;
}

/** What ends a wait on a call: its final response, or input requests (the call is parked). */
export type Outcome = { kind: 'response'; response: JsonRpcResponse } | { kind: 'input' };
