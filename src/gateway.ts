/**
 * Composition root of a running gateway: config → upstreams → MCP session layer → uWS server.
 * `startGateway` is what `main.ts` runs and what tests start on port 0.
 */
import { mkdirSync } from 'node:fs';
import type { GatewayConfig } from './config/schema.js';
import { createLogger, type Logger } from './log/logger.js';
import { EventBus } from './streams/events.js';
import { UpstreamManager } from './upstreams/manager.js';
import { SessionStore } from './handlers/mcp/session.js';
import { McpDispatcher } from './handlers/mcp/dispatch.js';
import { McpHttpHandler } from './handlers/mcp/http.js';
import { ToolModes } from './handlers/tool-modes/meta-tools.js';
import { healthEffect } from './handlers/health.js';
import { Readiness } from './handlers/readiness.js';
import { GatewayServer } from './server/app.js';
import { notFound, type StaticFiles } from './server/app-routes.js';
import { RouteTable, type RouteHandler } from './base/routes.js';
import { registerServerRoutes, WS_ROUTES } from './handlers/server-routes.js';
import { loadNativeUws, type UwsModule } from './server/uws.js';
import { WorkerPool } from './server/worker-pool.js';
import { WorkerCallHandler } from './handlers/mcp/worker-calls.js';
import { MAX_SSE_BACKLOG_BYTES } from './server/app-response.js';
import { of } from 'rxjs';
import { EventLogRepository, type SeqGap, type StoredEvent } from './store/events.js';
import { EventRecorder } from './handlers/event-recorder.js';
import { EventsWsEndpoint } from './handlers/events-ws.js';
import { LiveWsEndpoint } from './handlers/live-ws.js';
import { GatewayMetrics } from './handlers/metrics.js';
import { MCP_WS_DEFAULTS, McpWsEndpoint } from './handlers/mcp/ws.js';
import { openStore, type Store } from './store/open.js';
import { ClientAdmin } from './handlers/mgmt/clients.js';
import { RestRouter } from './handlers/rest/router.js';
import { ToolExecuteHandler } from './handlers/tool-execute.js';
import { ToolLogHandler } from './handlers/tool-log.js';
import { isLoopbackHost } from './config/load.js';
import { KeyRegistry } from './auth/keys.js';
import { openKeyRepository } from './store/keys.js';
import { JwtVerifier } from './auth/jwt.js';
import { VirtualKeyAccess } from './auth/access.js';
import { AccessGate } from './auth/gate.js';
import { accessCheck, credentialCheck, messageCheck } from './handlers/access.js';
import { KeyAdmin } from './handlers/mgmt/keys.js';
import { registerV1 } from './handlers/rest-v1/index.js';
import { openV1Store } from './store/v1-records.js';
import { GitHubWebhooks } from './handlers/webhooks.js';
import { registerOpenApi } from './handlers/openapi.js';
import { Tracing } from './telemetry/tracing.js';
import { providerCallEntry } from './providers/call-log.js';
import { registerLogLevel } from './handlers/mgmt/log-level.js';
import { Orchestrator } from './handlers/agents/orchestrator.js';
import { WorkspaceHub } from './handlers/workspaces/hub.js';
import { SecretBox } from './providers/secret-box.js';
import { ProviderRegistry } from './providers/registry.js';
import { ProviderMetrics } from './providers/metrics.js';
import type { ProviderObservation } from './providers/openai-client.js';
import { ProviderRepository } from './store/providers.js';
import { EmbeddingStore } from './store/embeddings.js';
import { EmbeddingRoutes, EmbeddingWsMethods } from './handlers/rest-v1/embeddings.js';
import { ModelSummaryRoutes } from './handlers/rest-v1/model-summary.js';
import { ProviderAdmin } from './handlers/mgmt/providers.js';
import { ResponsesWsEndpoint } from './handlers/responses-ws.js';
import { cookieValue, UI_SESSION_COOKIE, UiSessionStore } from './auth/ui-session.js';
import { withUiSessions } from './handlers/ui/access.js';
import { UiSessionHandler } from './handlers/ui/session.js';
import { UiOverview } from './handlers/ui/overview.js';
import { StaticAssets } from './handlers/ui/static.js';
import { WS_CLOSE_CREDENTIAL_ENDED } from './streams/ws.js';
import { registerWorkspaceRoutes } from './handlers/workspaces/rest.js';
import { OAuthResourceServer } from './auth/oauth-resource.js';
import { registerOAuthRoutes } from './handlers/oauth.js';
import { CLIENT_WIDE, UpstreamOAuth } from './upstreams/oauth/upstream-oauth.js';
import { OAuthGrantRepository } from './store/oauth-grants.js';
import { OAuthFlowRepository } from './store/oauth-flows.js';
import { principalUpstreams } from './upstreams/oauth/per-user.js';
import { TeardownStack } from './base/teardown.js';
import type { ClusterRuntime } from './cluster/runtime.js';

export interface Gateway {
  readonly config: GatewayConfig;
  /** The bound port (useful with port 0). */
  readonly port: number;
  readonly url: string;
  readonly manager: UpstreamManager;
  readonly sessions: SessionStore;
  readonly bus: EventBus;
  readonly store: Store;
  /** Model providers (the built-in embedder included). */
  readonly providers: ProviderRegistry;
  readonly tracing: Tracing;
  /** Cluster mode (NATS JetStream); `undefined` without a `cluster` config. */
  readonly cluster: ClusterRuntime | undefined;
  /** Every HTTP route and WebSocket upgrade served, with its declaration (rule, headers, admission, doc). */
  readonly routes: RouteTable<RouteHandler>;
  /** `server.workers` > 1: the worker threads on the port; `undefined` with one thread. */
  readonly workers: WorkerPool | undefined;
  /**
   * Graceful stop: stop accepting, let POSTs in flight finish up to `shutdown_timeout_ms`, end
   * sessions and streams, close upstreams (stdio subprocesses end). From its first step no
   * upstream is reconnected or respawned. Idempotent.
   */
  close(): Promise<void>;
  /**
   * Immediate stop (a second Ctrl-C): kills the stdio upstreams' process groups with SIGKILL,
   * synchronously, so the caller can exit at once without leaving a child behind.
   */
  killUpstreams(): void;
}

export interface StartOptions {
  readonly log?: Logger;
  readonly uws?: UwsModule;
}

/** How long a relayed sampling/elicitation request waits for the downstream answer, ms. */
const SERVER_REQUEST_TIMEOUT_MS = 10 * 60_000;

/**
 * Starts a gateway. The port is bound first (exclusively), then the upstreams are connected (each
 * bounded by its connect timeout; failures leave that upstream in state `error`); resolves once the
 * gateway is ready: every upstream was tried, or `server.ready_timeout_ms` passed (the rest go on
 * connecting in the background; `/health` says which). Until then `/health` and `/health/ready`
 * answer 503 (`starting`) and MCP requests (`POST /mcp`, `/ws`, tool execution) are held, then
 * served in order.
 *
 * Wiring only: every part is created after the parts it uses, and registers its own release on one
 * {@link TeardownStack} right after it is created. A start-up failure and {@link Gateway.close}
 * unwind that same stack, last created first.
 * @throws UwsNativeError when uWS' native binary did not load; Error when the port cannot be bound.
 */
export async function startGateway(config: GatewayConfig, options: StartOptions = {}): Promise<Gateway> {
  const uws = options.uws ?? loadNativeUws();
  const log = options.log ?? createLogger(config.log_level);
  const teardown = new TeardownStack((step, err) => log.warn('teardown step failed', { step, error: err }));
  /** What upstreams are told when they are closed by the unwind. */
  let stopReason = 'start-up failed';
  try {
    return await wire(config, uws, log, teardown, () => stopReason, () => {
      stopReason = 'shutdown';
    });
  } catch (err) {
    await teardown.unwind();
    throw err;
  }
}

/** The body of {@link startGateway}: creates the parts in dependency order, each registering its release on `teardown`. */
async function wire(config: GatewayConfig, uws: UwsModule, log: Logger, teardown: TeardownStack, stopReason: () => string, shuttingDown: () => void): Promise<Gateway> {
  const tracing = await Tracing.fromConfig(config.tracing, log);
  teardown.defer('tracing', () => tracing.shutdown());
  mkdirSync(config.data_dir, { recursive: true });
  const store = await openStore(config.data_dir, log, {
    batch: { windowMs: config.store.batch_window_ms, maxBatch: config.store.max_batch },
    toolLog: { maxPayloadBytes: config.tool_log.max_payload_bytes },
    leveldb: { writeBufferSize: config.store.write_buffer_mib * 1024 * 1024, maxFileSize: config.store.max_file_mib * 1024 * 1024, compression: config.store.compression },
    // store batches get root spans (nothing is wrapped when tracing is off)
    ...(tracing.enabled ? { aroundBatch: (size: number, commit: () => Promise<void>) => tracing.storeBatch(size, commit) } : {}),
  });
  teardown.defer('store', () => store.close());

  // access control: keys from the store, JWT keys from their file; a gateway nobody could log in to is refused
  const keys = new KeyRegistry(openKeyRepository(store));
  await keys.load();
  const jwt = config.auth.jwt ? await JwtVerifier.create({ ...config.auth.jwt, cache_max: 10_000 }) : undefined;
  if (config.auth.enabled && !config.auth.admin && !jwt && !config.auth.oauth && keys.list('api_key').every((k) => k.revoked_at !== undefined)) {
    throw new Error(`auth is ${config.auth.reason}, but nobody could authenticate: configure auth.admin (or env TRIBUTARY_ADMIN_PASSWORD) or auth.jwt, or set auth.disabled: true`);
  }
  log.info('access control', { auth: config.auth.reason, jwt: jwt !== undefined, admin_user: config.auth.admin?.username ?? null, metrics_require_auth: config.auth.metrics_require_auth });

  // seq continues across restarts above any number the previous run could have used, so `since` replay spans them
  // tool events live in their tool-log records (one write per call); the event log reads them there
  const eventLog = new EventLogRepository(store.db, store.sublevel<StoredEvent>('events'), store.writer, store.meta, store.sublevel<SeqGap>('event_gaps'), store.toolLog);
  const seqStart = await eventLog.open();
  if (seqStart.gap !== undefined) log.warn('previous run ended without a clean stop: event seqs it had reserved stay unused', { ...seqStart.gap });
  const bus = new EventBus(seqStart.lastSeq);
  teardown.defer('event bus', () => bus.close());
  // runs after every event is settled (the recorder's step below runs first): a clean stop leaves no hole
  teardown.defer('event seq reservation', () => eventLog.release(bus.lastSeq));
  // every event (with its tool-log entry) is stored before the feeds see it and before a tool call is answered
  const recorder = new EventRecorder(store.writer, eventLog, store.toolLog, log.child({ component: 'event-recorder' }), seqStart.lastSeq);
  const detachRecorder = recorder.attach(bus);
  teardown.defer('event recorder', async () => {
    await store.writer.flush();
    detachRecorder();
    recorder.close();
  });
  const eventSweep = setInterval(() => {
    eventLog.sweep(config.events.max_stored).catch((err: unknown) => log.warn('event log sweep failed', { error: err }));
  }, 60_000);
  eventSweep.unref();
  teardown.defer('event log sweep', () => clearInterval(eventSweep));
  // many nodes: NATS JetStream, loaded only when configured; a node that cannot join refuses to start
  let cluster: ClusterRuntime | undefined;
  if (config.cluster !== undefined) {
    const { ClusterRuntime: Runtime } = await import('./cluster/runtime.js');
    const joined = await Runtime.start(config.cluster, { recorded: recorder, log });
    cluster = joined;
    // this node's last events go to the cluster stream before it leaves
    teardown.defer('cluster', async () => {
      await store.writer.flush();
      await joined.close();
    });
  }

  /**
   * The metrics registry counts the surfaces, so it is created after them; the two sources that
   * report before it exists (provider calls, MCP requests) reach it through this holder and are
   * not counted until it is set.
   */
  const metricsSink: { metrics?: GatewayMetrics; providers?: ProviderMetrics } = {};
  const box = config.model_providers.encryption_key !== undefined ? SecretBox.fromBase64(config.model_providers.encryption_key) : SecretBox.fromKeyFile(config.data_dir);
  const providers = new ProviderRegistry({
    configured: config.model_providers.providers,
    defaultProvider: config.model_providers.default_provider,
    repo: new ProviderRepository(store),
    box,
    observe: (o: ProviderObservation) => {
      metricsSink.providers?.observe(o);
      // model calls go to the tool log too, so its cost figures include what models cost
      const entry = providerCallEntry(o, Tracing.traceId(tracing.current()));
      if (entry !== undefined) store.toolLog.append(entry).catch((err: unknown) => log.warn('model call not written to the tool log', { provider: o.provider, error: err }));
    },
    log: log.child({ component: 'providers' }),
    tracing,
  });
  teardown.defer('model providers', () => providers.dispose());
  await providers.init();
  const vectors = new EmbeddingStore(store, config.embeddings.max_vectors_per_tenant);
  await vectors.init();
  // upstream OAuth: tokens sealed with their own key (env TRIBUTARY_OAUTH_KEY, or a 0600 key file)
  const oauthBox = config.oauth.encryption_key !== undefined ? SecretBox.fromBase64(config.oauth.encryption_key) : SecretBox.fromKeyFile(config.data_dir, 'oauth-secret.key');
  /** `http://host:port` once the port is bound (redirect URIs, the resource URI). */
  let baseUrl = config.oauth.public_url ?? '';
  const upstreamOAuth = new UpstreamOAuth({ repo: new OAuthGrantRepository(store), flowRepo: new OAuthFlowRepository(store), box: oauthBox, settings: config.oauth, log: log.child({ component: 'oauth' }), baseUrl: () => baseUrl });
  await upstreamOAuth.init();

  const manager = new UpstreamManager(log, bus);
  teardown.defer('upstreams', () => manager.closeAll(stopReason()));
  const sessions = new SessionStore(config.server.max_sessions, config.server.session_idle_timeout_ms);
  teardown.defer('MCP sessions', () => sessions.closeAll());
  const admin = new ClientAdmin(manager, store.clients, log, bus, (id) => keys.hasVirtualKey(id), upstreamOAuth);
  manager.httpAuth = (c) => {
    const id = c.client_id;
    if ((c.auth_type !== 'oauth' && c.auth_type !== 'per_user_oauth') || id === undefined) return undefined;
    return (base) => upstreamOAuth.fetchFor(() => admin.oauthClient(id) ?? { ...c, client_id: id }, CLIENT_WIDE, base);
  };
  // per_user_oauth: each caller on its own connection with its own token
  manager.perPrincipal = (c, create) => {
    const id = c.client_id;
    if (c.auth_type !== 'per_user_oauth' || id === undefined) return undefined;
    return principalUpstreams(() => admin.oauthClient(id) ?? { ...c, client_id: id }, upstreamOAuth, create, log.child({ component: 'oauth', client: c.name }), { idleMs: config.oauth.per_user_idle_s * 1000 });
  };
  upstreamOAuth.onAuthorized = (id, principal, configId) => {
    admin.oauthAuthorized(id, principal, configId).catch((err: unknown) => log.warn('OAuth authorization follow-up failed', { error: err }));
  };
  const vkAccess = new VirtualKeyAccess(() => admin.vkPolicies());
  // the gateway as an OAuth protected resource (RFC 9728), beside keys, JWTs and Basic
  const oauthResource = config.auth.oauth ? new OAuthResourceServer(config.auth.oauth) : undefined;
  const gate = new AccessGate(config.auth, { keys, vkAccess, jwt, oauth: oauthResource, log });
  // cluster mode: per-key limits are counted in NATS KV, shared by every node
  if (cluster !== undefined) gate.limits.factory = (opts) => cluster.limiter(opts);
  const dispatcher = new McpDispatcher(manager, sessions, bus, log, {
    pageSize: config.server.page_size,
    serverRequestTimeoutMs: SERVER_REQUEST_TIMEOUT_MS,
    onRequest: (method) => metricsSink.metrics?.observeMcp(method),
    admitToolExecution: (auth) => gate.admitToolExecutionNow(auth),
    tracing,
  });
  teardown.defer('MCP dispatcher', () => dispatcher.dispose());
  dispatcher.toolModes = new ToolModes(dispatcher, config.tool_modes, log.child({ component: 'tool-modes' }));
  const mcp = new McpHttpHandler(dispatcher, sessions, log, {
    allowedOrigins: config.server.allowed_origins,
    allowedHosts: config.server.allowed_hosts ?? [],
    enforceHost: config.server.allowed_hosts !== undefined || isLoopbackHost(config.server.host),
    sseKeepAliveMs: config.server.sse_keepalive_ms,
  });
  // cluster mode: sealed session ids, so any node serves a session; its messages routed over NATS
  await cluster?.shareSessions(sessions, (id, message) => mcp.deliverRouted(id, message), log);
  const vkInvalidation = bus.events$.subscribe((e) => {
    if (e.event_type !== 'StoreChanged' || !e.tags.includes('mcp_clients')) return;
    vkAccess.invalidate();
    // what a virtual key may use can change without the catalogue changing: tell its sessions
    dispatcher.notifyToolsChanged((s) => s.owner?.startsWith('vk:') === true);
  });
  teardown.defer('virtual-key invalidation', () => vkInvalidation.unsubscribe());

  // cluster mode: every node's events, in the stream's order, replayed from the stream
  const eventsWs = new EventsWsEndpoint(cluster?.feed ?? recorder, cluster?.feed ?? eventLog, log, {
    maxQueued: config.events.max_queued,
    maxMessageBytes: 16 * 1024,
    highWaterBytes: 256 * 1024,
    maxReplay: config.events.max_replay,
  });
  teardown.defer('/api/ws/events', () => eventsWs.dispose());
  const liveWs = new LiveWsEndpoint(recorder, { maxQueued: config.events.max_queued, highWaterBytes: 256 * 1024, maxPayloadBytes: config.tool_log.max_payload_bytes });
  teardown.defer('/api/ws/live', () => liveWs.dispose());
  // before /ws, so released after it: documents are flushed once no socket can change them
  const workspaces = new WorkspaceHub({ store, bus, log: log.child({ component: 'workspaces' }), config: config.workspaces });
  teardown.defer('workspaces', () => workspaces.dispose());

  /** MCP traffic is held until the initial catalogue load is over or `server.ready_timeout_ms` passed. */
  const readiness = new Readiness();
  const agentWs = new McpWsEndpoint(dispatcher, sessions, log, MCP_WS_DEFAULTS);
  agentWs.readiness = readiness;
  teardown.defer('/ws', () => agentWs.dispose());
  const modelRecords = openV1Store(store).models;
  const responsesWs = new ResponsesWsEndpoint({
    providers,
    manager,
    bus,
    log: log.child({ component: 'responses-ws' }),
    admitToolExecution: (auth) => gate.admitToolExecution(auth),
    limits: config.responses,
    tracing,
    modelRecord: async (tenant, n) => (await modelRecords.list(tenant)).find((m) => m.id === n || m.name === n),
  });
  teardown.defer('/v1/responses', () => responsesWs.dispose());
  // after /ws, so released before it: closing agents' sockets must not re-queue their tasks at shutdown
  const orchestrator = new Orchestrator({ repos: openV1Store(store), store, bus, log: log.child({ component: 'orchestrator' }), config: config.orchestration });
  teardown.defer('orchestrator', () => orchestrator.dispose());
  // every route's declaration (rule, headers, admission, doc) with its handler; the server looks requests up here
  const routes = new RouteTable<RouteHandler>();
  const rest = new RestRouter(log, tracing, routes);
  // the dashboard at /ui: static files, sign-in sessions, the overview sample
  // (`ui.enabled: false`: no /ui files, no /api/ui/* routes, and the session cookie is not a credential)
  const uiSessions = new UiSessionStore({ idleMs: config.ui.session_idle_s * 1000, maxMs: config.ui.session_max_s * 1000 });
  const uiAccess = (base: ReturnType<typeof accessCheck>): ReturnType<typeof accessCheck> =>
    config.ui.enabled ? withUiSessions(base, gate, uiSessions, config.auth.metrics_require_auth) : base;
  const uiAssets = config.ui.enabled ? new StaticAssets() : undefined;
  if (config.ui.enabled) new UiSessionHandler({ gate, sessions: uiSessions, keys, adminUser: config.auth.admin?.username, log }).register(rest);
  admin.register(rest);
  new ToolExecuteHandler(manager, bus, (auth) => gate.admitToolExecution(auth)).register(rest);
  new KeyAdmin(keys, bus, log).register(rest);
  const webhooks = new GitHubWebhooks({
    secret: config.webhooks.github_secret,
    maxRememberedDeliveries: config.webhooks.max_remembered_deliveries,
    store,
    bus,
    log: log.child({ component: 'webhooks' }),
  });
  webhooks.register(rest);
  registerLogLevel(rest, log);
  registerOpenApi(rest);
  registerOAuthRoutes(rest, oauthResource, {
    verifyStart: (state, principal) => upstreamOAuth.verifyStart(state, principal),
    complete: (state, code, error, binding) => upstreamOAuth.complete(state, code, error, (id) => admin.oauthClient(id), binding),
    // a per-user authorization link is opened by a browser signed in to the dashboard as its user
    browserPrincipal: (cookie) => (config.ui.enabled ? uiSessions.touch(cookieValue(cookie, UI_SESSION_COOKIE))?.principal.id : undefined),
    get secure() {
      return upstreamOAuth.publicBase.startsWith('https://');
    },
  });
  new ToolLogHandler(store.toolLog).register(rest);
  const stopRetention = store.toolLog.startRetention({ maxEntries: config.tool_log.max_entries, maxAgeMs: config.tool_log.max_age_ms }, config.tool_log.sweep_interval_ms);
  teardown.defer('tool log retention', () => stopRetention());

  const wsConnections = (): Record<string, number> => ({ '/api/ws/events': eventsWs.connections, '/api/ws/live': liveWs.connections, '/ws': agentWs.connections, '/v1/responses': responsesWs.connections });
  const metrics = new GatewayMetrics(bus, {
    manager,
    wsConnections,
    queueDepth: () => ({ '/api/ws/events': eventsWs.queued }),
    eventsDropped: () => eventsWs.droppedTotal,
    store: () => store.writer.counters,
    auth: () => gate.counters,
    orchestration: () => orchestrator.stats,
    workspaces: () => workspaces.counters,
  });
  teardown.defer('metrics', () => metrics.dispose());
  metricsSink.metrics = metrics;
  cluster?.registerMetrics(metrics.registry, 'tributary_');
  metricsSink.providers = new ProviderMetrics(metrics.registry, () => providers.list().map((p) => ({ provider: p.client.name, state: p.client.breaker.state })));
  new ProviderAdmin(providers, bus).register(rest);
  const uiOverview = new UiOverview({ bus, manager, registry: metrics.registry, sessions: () => sessions.size, wsConnections });
  teardown.defer('dashboard overview', () => uiOverview.dispose());
  if (config.ui.enabled) uiOverview.register(rest);

  let draining = false;
  let workers: WorkerPool | undefined;
  /** Whether the main thread takes connections (with `server.main_thread_listens: false`, only while no worker does). */
  let mainListening = true;
  /** `/health` `components.workers` with `server.workers` > 1 (the pool is started after the port is bound). */
  const workersHealth =
    config.server.workers > 1
      ? (): Record<string, unknown> => ({ threads: config.server.workers, owner: { thread: 0, requests: server.requestsOwn, listening: mainListening }, workers: workers?.view() ?? [] })
      : undefined;
  registerServerRoutes(routes, {
    mcpPost: (i) => mcp.post(i),
    mcpGet: (i) => mcp.get(i),
    mcpDelete: (i) => mcp.delete(i),
    mcpOptions: (i) => mcp.preflight(i),
    health: (i) => of(healthEffect({ manager, sessions: () => sessions.size, draining: () => draining, readiness, providers: () => providers.health(), cluster: cluster && (() => cluster.health()), workers: workersHealth }, i.path)),
    metrics: () => metrics.handle(),
    notFound,
  });
  const server = new GatewayServer(
    uws,
    routes,
    {
      onResponse: (path, method, status, seconds) => metrics.observeHttp(path, method, status, seconds),
      host: config.server.host,
      port: config.server.port,
      maxBodyBytes: config.server.max_body_bytes,
      concurrency: config.server.concurrency,
      maxQueued: config.server.max_queued,
      access: uiAccess(accessCheck(gate, config.auth.metrics_require_auth)),
      // routes declared holdUntilReady (POST /mcp, tool execution) wait for the initial catalogue load
      readiness,
      ...(uiAssets ? { staticFiles: ((method, path, acceptEncoding, ifNoneMatch) => uiAssets.serve(method, path, acceptEncoding, ifNoneMatch)) satisfies StaticFiles } : {}),
    },
    log,
  );
  teardown.defer('server', () => {
    server.stopListening();
    server.closeAll();
  });
  const wsAccess = {
    check: uiAccess(accessCheck(gate, config.auth.metrics_require_auth)),
    admitMessage: messageCheck(gate),
    revalidate: credentialCheck(gate),
  };
  const wsOptions = { maxPayloadLength: 1024 * 1024, idleTimeoutSeconds: config.events.idle_timeout_s, maxBackpressure: 8 * 1024 * 1024 };
  const feeds = [
    server.attachWs(WS_ROUTES.events, eventsWs, wsOptions, wsAccess),
    server.attachWs(WS_ROUTES.live, liveWs, wsOptions, wsAccess),
    server.attachWs(WS_ROUTES.agents, agentWs, { ...wsOptions, maxPayloadLength: 32 * 1024 * 1024, maxBackpressure: 32 * 1024 * 1024, protocols: ['mcp'] }, wsAccess),
    server.attachWs(WS_ROUTES.responses, responsesWs, { ...wsOptions, maxPayloadLength: 16 * 1024 * 1024, maxBackpressure: 16 * 1024 * 1024 }, wsAccess),
  ];
  // a dashboard session that ends (sign-out, expiry) closes the sockets opened with it
  uiSessions.onEnd((key) => {
    for (const conns of feeds) for (const c of conns) if (c.auth?.uiSession === key) c.close(WS_CLOSE_CREDENTIAL_ENDED, 'session_ended: the dashboard session ended');
  });
  /** Re-checks every open socket's credential: those revoked or expired are closed (4401). */
  const recheckSockets = (): void => {
    const now = Date.now();
    for (const conns of feeds) for (const c of conns) c.authorize(now);
  };
  // a revoked key's sockets close at once, not at their next message; expiry is caught at the next ping
  const credentialSweep = bus.events$.subscribe((e) => {
    if (e.event_type === 'StoreChanged' && (e.tags.includes('api_keys') || e.tags.includes('virtual_keys') || e.tags.includes('mcp_clients'))) recheckSockets();
  });
  teardown.defer('credential sweep', () => credentialSweep.unsubscribe());
  const pinger = setInterval(() => {
    recheckSockets();
    for (const conns of feeds) for (const c of conns) c.ping();
  }, config.events.ping_interval_ms);
  pinger.unref();
  teardown.defer('WebSocket pings', () => clearInterval(pinger));

  await webhooks.init();
  const v1 = await registerV1(rest, {
    store,
    manager,
    bus,
    log,
    admitToolExecution: (auth) => gate.admitToolExecution(auth),
    agentStatus: (tenant, id) => orchestrator.statusOf(tenant, id),
  });
  await orchestrator.init();
  orchestrator.register(v1.api);
  const embeddingRoutes = new EmbeddingRoutes({ providers, vectors, repos: v1.repos, limits: config.embeddings });
  embeddingRoutes.register(v1.api);
  agentWs.addHost(new EmbeddingWsMethods(embeddingRoutes));
  new ModelSummaryRoutes({ providers, repos: v1.repos }).register(v1.api);
  registerWorkspaceRoutes(v1.api, workspaces);
  agentWs.addHost(orchestrator);
  await workspaces.init();
  agentWs.addHost(workspaces);
  // bind before connecting upstreams: a taken port fails before any subprocess is spawned, and
  // /health answers (503 "starting") while the upstreams connect
  // server.workers > 1: worker threads listen on the same port (SO_REUSEPORT) and carry their traffic here
  const port = config.server.workers > 1 ? await server.listenShared() : await server.listen();
  if (config.server.workers > 1) {
    // the MCP fast path: POST /mcp requests a worker decided come as calls (see handlers/mcp/worker-calls.ts)
    const calls = new WorkerCallHandler({
      dispatcher,
      sessions,
      gate,
      keys,
      log: log.child({ component: 'workers' }),
      ready: () => readiness.ready,
      draining: () => draining,
      beginRequest: () => server.beginRemoteCall(),
      endRequest: () => server.endRemoteCall(),
      onResponse: (path, method, status, seconds) => metrics.observeHttp(path, method, status, seconds),
      tokens: jwt !== undefined || oauthResource !== undefined,
      allowedHosts: config.server.allowed_hosts ?? [],
      enforceHost: config.server.allowed_hosts !== undefined || isLoopbackHost(config.server.host),
      maxBodyBytes: config.server.max_body_bytes,
      metricsRequireAuth: config.auth.metrics_require_auth,
    });
    // a key created or revoked reaches the workers at once (the owner re-checks every call's key anyway)
    const keyChanges = bus.events$.subscribe((e) => {
      if (e.event_type === 'StoreChanged' && (e.tags.includes('api_keys') || e.tags.includes('virtual_keys'))) calls.check();
    });
    teardown.defer('worker MCP calls', () => {
      keyChanges.unsubscribe();
      calls.dispose();
    });
    // main_thread_listens: false — connections go to the workers; the main thread listens only while none does
    const followWorkers = (listening: number): void => {
      if (config.server.main_thread_listens || draining) return;
      if (listening > 0 && mainListening) {
        server.stopListening();
        mainListening = false;
        log.info('main thread stops taking connections: worker threads listen', { worker_threads_listening: listening });
      } else if (listening === 0 && !mainListening) {
        mainListening = true;
        log.warn('no worker thread listens: the main thread takes connections until one does');
        void server.resumeListening().then((ok) => {
          if (ok) return;
          mainListening = false;
          log.error('the main thread cannot listen again on the port', { port });
        });
      }
    };
    const pool = new WorkerPool({ host: config.server.host, port, threads: config.server.workers - 1, maxSseBacklogBytes: MAX_SSE_BACKLOG_BYTES, onListening: followWorkers }, config.server.worker_mcp_calls ? { ...server.remote(), mcp: calls, mcpWs: { path: WS_ROUTES.agents.path, maxPayloadBytes: MCP_WS_DEFAULTS.maxPayloadBytes } } : server.remote(), log.child({ component: 'workers' }));
    workers = pool;
    teardown.defer('worker threads', () => pool.close());
    await pool.start();
    pool.registerMetrics(metrics.registry, 'tributary_', () => server.requestsOwn);
  }
  baseUrl = config.oauth.public_url ?? `http://${config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host}:${port}`;
  oauthResource?.bind(baseUrl);
  log.info('port bound; connecting upstreams', { host: config.server.host, port });
  readiness.begin();
  // ready when every upstream was tried, or when the bound passes (then the rest go on loading)
  const initialLoad = admin.init(config.mcp_clients).then(() => readiness.loaded());
  let bound: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timed_out'>((resolve) => {
    bound = setTimeout(() => resolve('timed_out'), config.server.ready_timeout_ms);
  });
  const first = await Promise.race([initialLoad, timedOut]).finally(() => clearTimeout(bound));
  if (first === 'timed_out') {
    const pending = manager.list().filter((u) => u.state !== 'connected' && u.state !== 'error').map((u) => u.name);
    readiness.timedOut(pending);
    log.warn('initial catalogue load not finished within server.ready_timeout_ms: serving what is loaded', { ready_timeout_ms: config.server.ready_timeout_ms, pending_upstreams: pending });
    initialLoad.then(
      () => log.info('initial catalogue load finished', { ms: readiness.detail().initial_load_ms }),
      (err: unknown) => log.error('initial catalogue load failed', { error: err }),
    );
  }
  // cluster mode: clients and keys follow the shared configuration bucket
  await cluster?.startConfigSync(admin, keys, (tags) => bus.publish({ event_type: 'StoreChanged', tags }), log);

  const sweeper = setInterval(() => {
    uiSessions.sweep();
    const n = sessions.sweep(Date.now());
    if (n > 0) log.info('idle sessions closed', { count: n });
  }, 60_000);
  sweeper.unref();
  teardown.defer('idle session sweep', () => clearInterval(sweeper));
  // "listening" marks readiness: the port is bound and every configured upstream was tried (or ready_timeout_ms passed)
  log.info('listening', { host: config.server.host, port, mcp: `http://${config.server.host}:${port}/mcp`, dashboard: `http://${config.server.host}:${port}/ui` });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      draining = true;
      shuttingDown();
      // first: an upstream that exits from now on (e.g. killed by the same Ctrl-C) is not respawned
      manager.beginShutdown();
      server.stopListening();
      workers?.stopListening();
      mcp.startDraining();
      if (!(await server.whenIdle(config.server.shutdown_timeout_ms))) log.warn('shutdown deadline passed with requests in flight', { in_flight: server.activeRequests });
      sessions.closeAll();
      server.closeAll();
      await teardown.unwind();
      log.info('stopped');
    })();
    return closing;
  };

  const host = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host;
  return { config, port, url: `http://${host}:${port}`, manager, sessions, bus, store, providers, tracing, cluster, routes, workers, close, killUpstreams: () => manager.killAll() };
}
