/**
 * The owner's side of the MCP fast path of `server.workers`: a worker thread that could decide a
 * `POST /mcp` request itself (headers, body, credential, JSON-RPC framing — see
 * `server/worker-mcp.ts`) sends one compact {@link WorkerCall} instead of the whole request; the
 * owner runs it through the same session and dispatcher code as `http.ts` and answers with the
 * response's effects. Anything the owner cannot serve this way exactly as its own path would —
 * not ready yet, draining, the session unknown here or opened by another credential, a key that
 * changed since the worker's copy, the request slots taken — is answered `carry`: the worker then
 * carries the whole request as before, and the owner's normal path answers it (so a 404, 401 or
 * 503 is the owner's own, byte for byte).
 *
 * What the workers need to decide is pushed to them as a {@link WorkerMcpState} (the hashes of the
 * valid keys with a version, never the secrets), again on every change of the keys. The owner
 * checks every call's key again by id (`AccessGate.admitKey`: revoked, expired, rate limits), so
 * a worker's stale copy can only make it carry more, never admit more.
 *
 * Streamable HTTP: https://modelcontextprotocol.io/specification/2025-06-18/basic/transports#streamable-http
 */
import { Observable, type Subscription } from 'rxjs';
import { GatewayError } from '../../base/errors.js';
import type { HttpEffect } from '../../base/http.js';
import type { KeyKind } from '../../store/keys.js';
import type { KeyRegistry } from '../../auth/keys.js';
import { ruleOf, type AccessGate, type GateDecision } from '../../auth/gate.js';
import { classify, type JsonRpcRequest } from '../../codecs/jsonrpc.js';
import type { Logger } from '../../log/logger.js';
import { ANONYMOUS, type Principal } from '../../base/principal.js';
import { McpConnectionLayer } from './connection.js';
import { SUPPORTED_PROTOCOL_VERSIONS, type McpDispatcher } from './dispatch.js';
import { PostCall } from './post-channel.js';
import type { McpSession, SessionStore } from './session.js';

/** The methods a worker may send as calls (everything else, `initialize` included, is carried). */
export const WORKER_CALL_METHODS: readonly string[] = ['tools/call', 'tools/list', 'ping'];

const MODERN_META = 'io.modelcontextprotocol/protocolVersion';

/**
 * The request a call's body holds when this path serves it: one JSON-RPC request (JSON-RPC 2.0
 * §4, https://www.jsonrpc.org/specification#request_object) of {@link WORKER_CALL_METHODS}
 * without the 2026-07-28 revision's `_meta`; else `undefined` (bad JSON, a notification, a
 * response, another method: the call is carried and the owner's own path answers it).
 */
export function callRequest(body: string): JsonRpcRequest | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  const c = classify(parsed);
  if (c.kind !== 'request' || !WORKER_CALL_METHODS.includes(c.msg.method)) return undefined;
  const meta = c.msg.params?.['_meta'];
  if (typeof meta === 'object' && meta !== null && typeof (meta as Record<string, unknown>)[MODERN_META] === 'string') return undefined;
  return c.msg;
}

/** A valid key as a worker holds it: never the secret, only what its hash names. */
export interface WorkerKey {
  readonly kind: KeyKind;
  readonly id: string;
  /** `expires_at` in epoch ms (`Infinity`: never). */
  readonly expiresMs: number;
}

/** What a worker thread needs to decide a `POST /mcp` itself; pushed on start and on every change. */
export interface WorkerMcpState {
  /** Bumped on every push. */
  readonly version: number;
  readonly authEnabled: boolean;
  /** JWT or OAuth tokens are accepted: a Bearer token shaped like a JWT (it has a `.`) is carried. */
  readonly tokens: boolean;
  /** SHA-256 (hex) of each valid key's secret → the key (revoked keys are left out). */
  readonly keys: ReadonlyMap<string, WorkerKey>;
  readonly methods: readonly string[];
  /** `MCP-Protocol-Version` values a session request may carry. */
  readonly protocolVersions: readonly string[];
  readonly allowedHosts: readonly string[];
  readonly enforceHost: boolean;
  /** `server.max_body_bytes`: a longer body is carried (the owner answers 413). */
  readonly maxBodyBytes: number;
}

/** One JSON-RPC request a worker decided it may hand over (worker → owner). */
export interface WorkerCall {
  readonly t: 'call';
  /** The worker's request id. */
  readonly id: number;
  readonly session: string;
  /** The caller's key; `undefined` when auth is off (anonymous) or the caller sent {@link bearer}. */
  readonly key: { readonly kind: KeyKind; readonly id: string } | undefined;
  /**
   * A Bearer token shaped like a JWT or OAuth access token, for the owner to identify (`''`:
   * none). The owner's gate verifies it as for its own requests: a token it verified before is one
   * cache lookup; one it refuses makes the call `carry`, so the refusal is the owner's own 401.
   */
  readonly bearer: string;
  /**
   * The body's JSON text, as the client sent it (what crosses the port: see `packFromWorker`).
   * The worker checked its size, its first byte and its nesting depth, not its JSON: the owner
   * parses it once ({@link callRequest}) and carries anything that is not a call of this path.
   */
  readonly body: string;
  /** The client accepts `text/event-stream` / only that. */
  readonly canSse: boolean;
  readonly sseOnly: boolean;
  readonly traceparent: string;
  readonly tracestate: string;
}

/** Where the owner's answer to one call goes (the link to the worker that holds the socket). */
export interface WorkerCallSink {
  /** One effect of the response, as the owner's own sink would carry it out. */
  effect(effect: HttpEffect): void;
  /** The owner does not serve this one as a call: the worker carries the whole request. */
  carry(): void;
}

export interface WorkerCallDeps {
  readonly dispatcher: McpDispatcher;
  readonly sessions: SessionStore;
  readonly gate: AccessGate;
  readonly keys: KeyRegistry;
  readonly log: Logger;
  /** MCP traffic is served (the initial catalogue load is over). */
  readonly ready: () => boolean;
  /** The gateway is shutting down (the owner answers 503). */
  readonly draining: () => boolean;
  /** Takes a request slot of the `mcp` pipeline's bound (false: none free, the call is carried). */
  readonly beginRequest: () => boolean;
  readonly endRequest: () => void;
  /** Called for every response (metrics), as for the owner's own. */
  readonly onResponse?: (path: string, method: string, status: number, seconds: number) => void;
  /** Whether Bearer tokens may be JWTs or OAuth tokens. */
  readonly tokens: boolean;
  readonly allowedHosts: readonly string[];
  readonly enforceHost: boolean;
  readonly maxBodyBytes: number;
  readonly metricsRequireAuth: boolean;
}

/** How often the owner looks for key changes the workers do not have yet, ms. */
const STATE_CHECK_MS = 250;

export class WorkerCallHandler {
  readonly #connections: McpConnectionLayer;
  readonly #rule;
  #state: WorkerMcpState | undefined;
  #stateKeysVersion = -1;
  #version = 0;
  readonly #listeners = new Set<(s: WorkerMcpState) => void>();
  #timer: NodeJS.Timeout | undefined;
  /** Calls served and carried back, since start. */
  served = 0;
  carried = 0;

  constructor(private readonly deps: WorkerCallDeps) {
    this.#connections = new McpConnectionLayer(deps.dispatcher, deps.sessions, deps.log);
    this.#rule = ruleOf('tools', deps.metricsRequireAuth);
  }

  /** The current state for the workers (rebuilt when the keys changed). */
  state(): WorkerMcpState {
    const keysVersion = this.deps.keys.version;
    if (this.#state !== undefined && this.#stateKeysVersion === keysVersion) return this.#state;
    const keys = new Map<string, WorkerKey>();
    for (const kind of ['api_key', 'virtual_key'] as const) {
      for (const k of this.deps.keys.list(kind)) {
        if (k.revoked_at !== undefined) continue;
        keys.set(k.hash, { kind, id: k.id, expiresMs: this.deps.keys.expiresMs(kind, k.id) });
      }
    }
    this.#stateKeysVersion = keysVersion;
    this.#state = {
      version: ++this.#version,
      authEnabled: this.deps.gate.enabled,
      tokens: this.deps.tokens,
      keys,
      methods: WORKER_CALL_METHODS,
      protocolVersions: SUPPORTED_PROTOCOL_VERSIONS,
      allowedHosts: this.deps.allowedHosts,
      enforceHost: this.deps.enforceHost,
      maxBodyBytes: this.deps.maxBodyBytes,
    };
    return this.#state;
  }

  /**
   * Calls `listener` with every new state (the keys changed); checked every
   * {@link STATE_CHECK_MS} and at once by {@link check}. Returns the unsubscribe.
   */
  onState(listener: (s: WorkerMcpState) => void): () => void {
    this.#listeners.add(listener);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.check(), STATE_CHECK_MS);
      this.#timer.unref();
    }
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0 && this.#timer !== undefined) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
    };
  }

  /** Pushes a new state to the listeners when the keys changed. */
  check(): void {
    if (this.#state !== undefined && this.#stateKeysVersion === this.deps.keys.version) return;
    const s = this.state();
    for (const l of this.#listeners) l(s);
  }

  /** Stops the change checks. */
  dispose(): void {
    this.#listeners.clear();
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Serves one call from a worker: its effects go to `sink`, or `sink.carry()` when the owner's
   * own path must answer it. Returns the cancel of a call still running (the client left), else
   * `undefined`.
   */
  call(m: WorkerCall, sink: WorkerCallSink): (() => void) | undefined {
    const d = this.deps;
    if (!d.ready() || d.draining()) return this.#carry(sink);
    const msg = callRequest(m.body);
    if (msg === undefined) return this.#carry(sink);
    const session = d.sessions.get(m.session);
    // a session belongs to the credential that opened it: anything else is the owner's 403 or 404
    if (session === undefined) return this.#carry(sink);
    if (m.bearer !== '') return this.#callWithToken(m, msg, session, sink);
    const principalId = m.key === undefined ? ANONYMOUS.id : m.key.kind === 'virtual_key' ? `vk:${m.key.id}` : `key:${m.key.id}`;
    if (session.owner !== undefined && session.owner !== principalId) return this.#carry(sink);
    let decision: GateDecision | Promise<GateDecision> | undefined;
    if (m.key === undefined) decision = d.gate.enabled ? undefined : d.gate.admit(NO_CREDENTIALS, this.#rule);
    else decision = d.gate.admitKey(m.key.kind, m.key.id, this.#rule);
    return this.#decided(m, msg, session, decision, sink);
  }

  /**
   * A call whose caller sent a Bearer token (JWT or OAuth): identified by the owner's gate as its
   * own requests are (a cached token at once, a new one after its verification); a token the gate
   * refuses, or a session of another caller, is carried so the owner's path answers it.
   */
  #callWithToken(m: WorkerCall, msg: JsonRpcRequest, session: McpSession, sink: WorkerCallSink): (() => void) | undefined {
    const gate = this.deps.gate;
    let principal: Principal | Promise<Principal>;
    try {
      principal = gate.identify({ ...NO_CREDENTIALS, authorization: `Bearer ${m.bearer}` });
    } catch {
      return this.#carry(sink);
    }
    const admit = (p: Principal): (() => void) | undefined => {
      if (session.owner !== undefined && session.owner !== p.id) return this.#carry(sink);
      return this.#decided(m, msg, session, gate.admitPrincipal(p, NO_CREDENTIALS, this.#rule), sink);
    };
    if (!(principal instanceof Promise)) return admit(principal);
    // a token seen for the first time: verified (signature, claims) before the call goes on
    let gone = false;
    let cancel: (() => void) | undefined;
    principal.then(
      (p) => {
        if (!gone) cancel = admit(p);
      },
      () => {
        if (!gone) this.#carry(sink);
      },
    );
    return () => {
      if (gone) return;
      gone = true;
      cancel?.();
    };
  }

  /** The rest of {@link call} once the gate has answered (`undefined`: carried). */
  #decided(m: WorkerCall, msg: JsonRpcRequest, session: McpSession, decision: GateDecision | Promise<GateDecision> | undefined, sink: WorkerCallSink): (() => void) | undefined {
    const d = this.deps;
    if (decision === undefined) return this.#carry(sink);
    if (!d.beginRequest()) return this.#carry(sink);
    const started = performance.now();
    if (!(decision instanceof Promise)) return this.#serve(m, msg, session, decision, sink, started);
    let cancel: (() => void) | undefined;
    let gone = false;
    decision.then(
      (x) => {
        if (gone) d.endRequest();
        else cancel = this.#serve(m, msg, session, x, sink, started);
      },
      (err: unknown) => {
        d.log.error('access check failed', { path: '/mcp', error: err });
        if (!gone) this.#answer(sink, started, { kind: 'reply', status: 500, headers: [['Content-Type', 'application/json']], body: JSON.stringify(new GatewayError('INTERNAL_ERROR').toRest()) });
        d.endRequest();
      },
    );
    return () => {
      if (gone) return;
      gone = true;
      cancel?.();
    };
  }

  #carry(sink: WorkerCallSink): undefined {
    this.carried++;
    sink.carry();
    return undefined;
  }

  #answer(sink: WorkerCallSink, started: number, effect: HttpEffect): void {
    if (effect.kind === 'reply') this.deps.onResponse?.('/mcp', 'POST', effect.status, (performance.now() - started) / 1000);
    else if (effect.kind === 'sse-start') this.deps.onResponse?.('/mcp', 'POST', 200, (performance.now() - started) / 1000);
    sink.effect(effect);
  }

  /** The admitted call, as `McpHttpHandler.post` runs a request of a session. */
  #serve(m: WorkerCall, msg: JsonRpcRequest, session: McpSession, decision: GateDecision, sink: WorkerCallSink, started: number): (() => void) | undefined {
    const d = this.deps;
    if (!decision.ok) {
      // a refusal the owner's gate gave now (a rate limit): the reply its own path gives
      const err = decision.error;
      this.#answer(sink, started, { kind: 'reply', status: err.status, headers: [['Content-Type', 'application/json'], ...decision.headers], body: JSON.stringify({ jsonrpc: '2.0', id: null, error: err.toJsonRpc() }) });
      d.endRequest();
      return undefined;
    }
    this.served++;
    session.lastSeen = Date.now();
    const auth = decision.auth;
    const connections = this.#connections;
    const tp = m.traceparent;
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      d.endRequest();
    };
    const sub: Subscription = new Observable<HttpEffect>((s) => {
      const channel = new PostCall(s, m.canSse, m.sseOnly, connections, session, decision.headers);
      const call = connections.begin(session, msg, channel, auth, tp !== '' ? { traceparent: tp, tracestate: m.tracestate } : undefined);
      if (call instanceof GatewayError) {
        channel.finish({ jsonrpc: '2.0', id: msg.id, error: call.toJsonRpc() });
        return undefined;
      }
      channel.call = call;
      connections.runTo(session, msg, call, channel);
      // client gone (or the response ended): the channel cancels what is still running upstream
      return channel;
    }).subscribe({
      next: (effect) => this.#answer(sink, started, effect),
      error: (err: unknown) => {
        d.log.error('handler failed', { path: '/mcp', error: err });
        sink.effect({ kind: 'end' });
        finish();
      },
      complete: finish,
    });
    if (finished) return undefined;
    return () => {
      sub.unsubscribe();
      finish();
    };
  }
}

const NO_CREDENTIALS = { authorization: '', apiKey: '', virtualKey: '', includeClients: '', includeTools: '', remoteAddress: '' };
