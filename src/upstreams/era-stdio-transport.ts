/**
 * The stdio upstream transport that speaks both eras of MCP. Once the subprocess runs, it probes
 * with `server/discover` on the pipe; a server whose answer lists `2026-07-28` among its
 * `supportedVersions` is spoken to statelessly (every request carries the `_meta` envelope; change
 * notifications come from one `subscriptions/listen` request held open on the pipe). Any error, no
 * answer within {@link PROBE_TIMEOUT_MS} or an answer without that version means a session-based
 * server, and the SDK `Client` above goes on with `initialize` on the same pipe, as the revision's
 * backward-compatibility rules describe
 * (https://modelcontextprotocol.io/specification/2026-07-28/basic/versioning#backward-compatibility-with-initialization-based-versions,
 * https://modelcontextprotocol.io/specification/2026-07-28/basic/transports/stdio).
 *
 * To the SDK v1 `Client`, a modern upstream looks like a session-based one, as with
 * {@link EraHttpTransport}: `initialize` is answered from the discover result, `ping` becomes
 * `server/discover`, `logging/setLevel` sets the `_meta` log level of later requests, and
 * `resources/subscribe` adds a URI to the listen filter. A subclass of {@link GroupStdioTransport},
 * so everything that manages the subprocess (exit description, kill, pid) stays the same.
 */
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { answerLocally, declaredCapabilities, envelope, initializeResultFrom, listenFilter, untagged, type DiscoverResult, type LocalSessionState } from './era-http-transport.js';
import { GroupStdioTransport, type StdioTransportParams } from './stdio-transport.js';
import { POST_MESSAGE } from './upstream-types.js';

const MODERN = '2026-07-28';
/**
 * How long the probe waits for the subprocess's answer, ms. A session-based server may stay silent
 * on a request before `initialize`; the revision counts a timeout as "legacy". The wait includes
 * the subprocess's own start-up (an `npx` or `tsx` launch takes seconds on a loaded machine; 3 s
 * mistook a slow-starting 2026-07-28 server for a legacy one here), so it is generous: SDK-based
 * servers of either era answer at once when they are up, only a silent legacy one pays it.
 */
export const PROBE_TIMEOUT_MS = 10_000;
const PROBE_ID = 'tributary-probe';
const LISTEN_PREFIX = 'tributary-listen-';
/** How long to wait before reopening a listen request that ended, ms. */
const RELISTEN_MS = 1000;

type Message = { jsonrpc: '2.0'; id?: string | number; method?: string; params?: Record<string, unknown>; result?: unknown; error?: unknown };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** See the module comment. */
export class EraStdioTransport extends GroupStdioTransport {
  private discover: DiscoverResult | undefined;
  private probed = false;
  private probeAnswer: ((m: Message | undefined) => void) | undefined;
  private readonly local: LocalSessionState = { logLevel: undefined, subscribed: new Set<string>() };
  private listenId: string | undefined;
  private listenSeq = 0;
  private stopped = false;

  constructor(
    params: StdioTransportParams,
    private readonly probeTimeoutMs = PROBE_TIMEOUT_MS,
  ) {
    super(params);
  }

  /** `modern` or `legacy` once started. */
  get era(): 'modern' | 'legacy' | undefined {
    return this.discover !== undefined ? 'modern' : this.probed ? 'legacy' : undefined;
  }

  override async start(): Promise<void> {
    await super.start();
    const answer = await new Promise<Message | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), this.probeTimeoutMs);
      this.probeAnswer = (m) => {
        clearTimeout(timer);
        resolve(m);
      };
      // a subprocess that exits during the probe ends it at once (initialize then fails as before)
      this.child?.once('close', () => this.probeAnswer?.(undefined));
      super.send({ jsonrpc: '2.0', id: PROBE_ID, method: 'server/discover', params: { _meta: envelope(undefined) } } as JSONRPCMessage).catch(() => this.probeAnswer?.(undefined));
    });
    this.probeAnswer = undefined;
    this.probed = true;
    const result = answer?.result;
    if (isObject(result) && Array.isArray(result['supportedVersions']) && result['supportedVersions'].includes(MODERN) && isObject(result['capabilities'])) {
      this.discover = result as unknown as DiscoverResult;
      this.listen();
    }
  }

  override async close(): Promise<void> {
    this.stopped = true;
    return super.close();
  }

  protected override deliver(message: JSONRPCMessage): void {
    const m = message as Message;
    // the probe's answer (a late one after a timeout included) is the gateway's own
    if (m.id === PROBE_ID && m.method === undefined) {
      this.probeAnswer?.(m);
      return;
    }
    if (this.discover === undefined) {
      super.deliver(message);
      return;
    }
    if (m.method === undefined && typeof m.id === 'string' && m.id.startsWith(LISTEN_PREFIX)) {
      // the listen request ended (the server closed it, or refused it): listen again unless replaced
      if (m.id === this.listenId && !this.stopped) setTimeout(() => this.listen(), RELISTEN_MS).unref();
      return;
    }
    if (m.method !== undefined && m.id === undefined) {
      if (m.method === 'notifications/subscriptions/acknowledged') return;
      const sub = isObject(m.params?.['_meta']) ? m.params['_meta']['io.modelcontextprotocol/subscriptionId'] : undefined;
      if (sub !== undefined) {
        super.deliver({ jsonrpc: '2.0', method: m.method, params: untagged(m.params) } as JSONRPCMessage);
        return;
      }
    }
    super.deliver(message);
  }

  /** The stdio transport's `POST_MESSAGE`; a modern server's messages are rewritten by {@link send} first. */
  override [POST_MESSAGE](message: JSONRPCMessage): Promise<void> | undefined {
    return this.discover === undefined ? super[POST_MESSAGE](message) : this.send(message);
  }

  override async send(message: JSONRPCMessage): Promise<void> {
    if (this.discover === undefined) return super.send(message);
    const m = message as Message;
    if (m.method === undefined) return; // responses: a modern server sends no requests
    if (m.id === undefined) {
      // the session handshake's notification means nothing to a modern server
      if (m.method === 'notifications/initialized') return;
      return super.send(message);
    }
    const id = m.id;
    const local = answerLocally(m.method, m.params, this.local);
    if (local !== undefined) {
      if (local.resubscribe) this.listen();
      return this.answer({ jsonrpc: '2.0', id, result: {} });
    }
    switch (m.method) {
      case 'initialize':
        return this.answer({ jsonrpc: '2.0', id, result: initializeResultFrom(this.discover, m.params, 'stdio') });
      case 'ping':
        return super.send({ jsonrpc: '2.0', id, method: 'server/discover', params: { _meta: envelope(this.local.logLevel) } } as JSONRPCMessage);
      default: {
        const params: Record<string, unknown> = { ...(m.params ?? {}) };
        params['_meta'] = { ...(isObject(params['_meta']) ? params['_meta'] : {}), ...envelope(this.local.logLevel, declaredCapabilities(params['_meta'])) };
        return super.send({ jsonrpc: '2.0', id, method: m.method, params } as JSONRPCMessage);
      }
    }
  }

  /** A locally answered request: delivered on the next turn, as if the server had answered. */
  private answer(m: Message): void {
    queueMicrotask(() => super.deliver(m as JSONRPCMessage));
  }

  /** (Re)opens the listen request with the current filter; the previous one is cancelled. */
  private listen(): void {
    if (this.discover === undefined || this.stopped) return;
    const previous = this.listenId;
    const notifications = listenFilter(this.discover, this.local.subscribed);
    this.listenId = notifications === undefined ? undefined : `${LISTEN_PREFIX}${++this.listenSeq}`;
    if (previous !== undefined) {
      super.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: previous, reason: 'listen filter changed' } } as JSONRPCMessage).catch(() => undefined);
    }
    if (this.listenId === undefined || notifications === undefined) return;
    super
      .send({ jsonrpc: '2.0', id: this.listenId, method: 'subscriptions/listen', params: { _meta: envelope(undefined), notifications } } as JSONRPCMessage)
      .catch((err: unknown) => this.onerror?.(err instanceof Error ? err : new Error(String(err))));
  }
}
