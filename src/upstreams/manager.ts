/**
 * The upstream manager: every configured upstream MCP client, and the aggregated catalogue the
 * downstream surfaces serve. Tools and prompts are namespaced (`clientName-toolName`, see
 * `naming.ts`) and filtered by `tools_to_execute`; resources keep their URIs and route by URI
 * (exact match, then the longest matching resource-template prefix). When two upstreams list the
 * same resource URI or the same URI template, the upstream created first (config-file order, then
 * API-created clients; the order of `GET /api/mcp/clients`) keeps it, the other's entry is left
 * out of the lists, and a `ResourceUriConflict` event says so.
 *
 * Every upstream it holds is supervised (`supervisor.ts`: health ticks, reconnect with backoff,
 * circuit breaker events); the supervisors' effects are merged into one stream whose events go
 * to the bus. {@link remove}, {@link reconnect} and {@link closeAll} stop an upstream's
 * supervision before they close it, so a manual close never triggers an automatic reconnect.
 */
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { Subject, merge, map, mergeMap, filter, takeUntil, type Observable, type Subscription } from 'rxjs';
import type { McpClientConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { EventBus } from '../streams/events.js';
import { Upstream, type CatalogueKind, type JsonObject, type PrincipalUpstreams, type ServerRequestHandler } from './upstream.js';
import { UpstreamPool } from './pool.js';
import { superviseUpstream, type SupervisorEffect, type SupervisorOptions } from './supervisor.js';
import { isToolAllowed, namespacedName, toolPrefixFor } from './naming.js';
import type { Notification, ServerCapabilities } from '@modelcontextprotocol/sdk/types.js';

/** A downstream name resolved to its upstream. */
export interface Route {
  readonly upstream: Upstream;
  /** The name the upstream knows. */
  readonly name: string;
}

/** An upstream notification tagged with its source. */
export interface UpstreamNotification {
  readonly upstream: Upstream;
  readonly notification: Notification;
}

interface Index {
  tools: JsonObject[];
  toolRoutes: Map<string, Route>;
  prompts: JsonObject[];
  promptRoutes: Map<string, Route>;
  resources: JsonObject[];
  resourceRoutes: Map<string, Upstream>;
  resourceTemplates: JsonObject[];
  templatePrefixes: { prefix: string; upstream: Upstream }[];
}

/** Two upstreams claiming one resource URI or URI template: `kept` serves it, `hidden`'s entry is left out. */
interface ResourceConflict {
  readonly kind: 'resource' | 'resource_template';
  readonly uri: string;
  readonly kept: string;
  readonly hidden: string;
}

const EMPTY_INDEX: Index = {
  tools: [],
  toolRoutes: new Map(),
  prompts: [],
  promptRoutes: new Map(),
  resources: [],
  resourceRoutes: new Map(),
  resourceTemplates: [],
  templatePrefixes: [],
};

/** Test hooks for supervision (timers, jitter, health check); production uses the defaults. */
export type ManagerOptions = Partial<Omit<SupervisorOptions, 'log'>>;

export class UpstreamManager {
  private readonly upstreams = new Map<string, Upstream>();
  private readonly subs = new Map<string, Subscription>();
  private readonly supervise$ = new Subject<Upstream>();
  private readonly unsupervise$ = new Subject<Upstream>();
  /** Upstreams with a running supervisor (at most one each). */
  private readonly supervised = new Set<Upstream>();
  private readonly supervision: Subscription;
  private index: Index = EMPTY_INDEX;
  /** Resource URI conflicts already reported (see {@link reportConflicts}). */
  private reportedConflicts = new Set<string>();
  /** Set by {@link beginShutdown}: nothing is supervised, reconnected or respawned any more. */
  private shuttingDown = false;
  private readonly changedSubject = new Subject<CatalogueKind>();
  private readonly notificationSubject = new Subject<UpstreamNotification>();
  /** Emits after the aggregated catalogue of a kind changed (drives downstream list_changed). */
  readonly changed$: Observable<CatalogueKind> = this.changedSubject.asObservable();
  /** Upstream notifications other than list_changed and progress. */
  readonly notifications$: Observable<UpstreamNotification> = this.notificationSubject.asObservable();
  /** Answers server→client requests; set by the downstream session layer. */
  serverRequestHandler: ServerRequestHandler = async (upstream, request) => {
    throw new Error(`no downstream session can answer ${request.method} from upstream ${upstream.name}`);
  };

  /**
   * Wraps the `fetch` of an HTTP upstream's transport to authenticate it (upstream OAuth: bearer
   * tokens, refresh on 401); `undefined` for clients that need nothing.
   */
  httpAuth: ((config: McpClientConfig) => ((base: FetchLike) => FetchLike) | undefined) | undefined;

  /**
   * Per-principal connections of a client (`per_user_oauth`); `create` makes an unconnected
   * upstream of the config with the given fetch wrapper. `undefined` for shared clients.
   */
  perPrincipal: ((config: McpClientConfig, create: (authFetch: (base: FetchLike) => FetchLike) => Upstream) => PrincipalUpstreams | undefined) | undefined;

  constructor(
    private readonly log: Logger,
    private readonly bus: EventBus,
    options: ManagerOptions = {},
  ) {
    // One inner supervisor per upstream, merged: the number of inners is the number of upstreams
    // (configured or added through the management API), not driven by request traffic.
    this.supervision = this.supervise$
      .pipe(
        mergeMap((u) =>
          superviseUpstream(u, { ...options, log }).pipe(takeUntil(this.unsupervise$.pipe(filter((x) => x === u)))),
        ),
      )
      .subscribe((effect) => this.carryOut(effect));
  }

  /** Starts supervising `upstream` (each process of a pool on its own) unless it is already, or no longer held. */
  private supervise(upstream: Upstream): void {
    if (this.shuttingDown || this.upstreams.get(upstream.name) !== upstream) return;
    for (const m of upstream.members) {
      if (this.supervised.has(m)) continue;
      this.supervised.add(m);
      this.supervise$.next(m);
    }
  }

  /** Stops `upstream`'s supervisors (one per pool member): their timers and any recovery in progress. */
  private unsupervise(upstream: Upstream): void {
    for (const m of upstream.members) if (this.supervised.delete(m)) this.unsupervise$.next(m);
  }

  private carryOut(effect: SupervisorEffect): void {
    if (effect.kind === 'event') {
      this.bus.publish(effect.body);
      return;
    }
    if (this.upstreams.get(effect.upstream.name) !== effect.upstream) return;
    this.rebuild('tools');
    this.rebuild('resources');
    this.rebuild('prompts');
  }

  /** All upstreams in config order. */
  list(): Upstream[] {
    return [...this.upstreams.values()];
  }

  get(name: string): Upstream | undefined {
    return this.upstreams.get(name);
  }

  /**
   * Adds an upstream and connects it. Resolves once it is connected or has failed (a failure is
   * logged and leaves the upstream in state `error`; it does not reject).
   * @throws Error if an upstream of that name exists.
   */
  async add(config: McpClientConfig): Promise<Upstream> {
    if (this.upstreams.has(config.name)) throw new Error(`upstream ${config.name} already exists`);
    const answer: ServerRequestHandler = (u, req, extra) => this.serverRequestHandler(u, req, extra);
    // a pool's members call `answer` with themselves: a server→client request is answered on the process that asked
    const upstream = (config.stdio_config?.pool_size ?? 1) > 1 ? new UpstreamPool(config, this.log, answer) : new Upstream(config, this.log, answer, this.httpAuth?.(config));
    upstream.principals = this.perPrincipal?.(config, (authFetch) => {
      // a per-user connection's log messages reach the session whose call it serves, like a pool member's
      const own = new Upstream(config, this.log, answer, authFetch);
      own.notifications$.subscribe((notification) => this.notificationSubject.next({ upstream: own, notification }));
      return own;
    });
    this.upstreams.set(config.name, upstream);
    let previous = upstream.state;
    const sub = merge(
      upstream.catalogueChanged$.pipe(map((kind) => ({ kind }))),
      upstream.state$.pipe(map((state) => ({ state }))),
    ).subscribe((e) => {
      if ('kind' in e) {
        this.rebuild(e.kind);
        const count = e.kind === 'tools' ? upstream.catalogue.tools.length : e.kind === 'prompts' ? upstream.catalogue.prompts.length : upstream.catalogue.resources.length;
        this.bus.publish({ event_type: 'CatalogueChanged', mcp_server_id: upstream.name, kind: e.kind, count });
      } else if (e.state !== previous) {
        this.bus.publish({
          event_type: 'McpServerStateChanged',
          mcp_server_id: upstream.name,
          old_state: previous,
          new_state: e.state,
          ...(upstream.lastError !== undefined && e.state !== 'connected' ? { error: upstream.lastError } : {}),
        });
        previous = e.state;
        // tools of a disconnected upstream stay listed (calls answer "not connected") so clients
        // keep a stable list; a reconnect reloads the catalogue.
      }
    });
    // tagged with the process that sent it (a pool member), so log messages reach the session whose call it serves
    for (const m of upstream.members) sub.add(m.notifications$.subscribe((notification) => this.notificationSubject.next({ upstream: m, notification })));
    this.subs.set(config.name, sub);
    const started = Date.now();
    try {
      await upstream.connect();
      this.bus.publish({
        event_type: 'McpServerStarted',
        mcp_server_id: upstream.name,
        mode: config.connection_type,
        tools_count: upstream.catalogue.tools.length,
        startup_duration_ms: Date.now() - started,
      });
    } catch (err) {
      this.log.error('upstream failed to connect', { upstream: config.name, error: err });
    }
    this.rebuild('tools');
    this.rebuild('resources');
    this.rebuild('prompts');
    this.supervise(upstream);
    return upstream;
  }

  /**
   * Replaces an upstream's config in place (tool filters, prefix-free settings): no reconnect; the
   * aggregated catalogue is rebuilt. The name must not change (use remove + add for that).
   */
  updateConfig(name: string, config: McpClientConfig): void {
    const upstream = this.upstreams.get(name);
    if (!upstream) throw new Error(`upstream ${name} does not exist`);
    if (config.name !== name) throw new Error('updateConfig cannot rename an upstream');
    upstream.config = config;
    for (const m of upstream.members) if (m !== upstream) m.config = config;
    this.rebuild('tools');
    this.rebuild('prompts');
  }

  /**
   * Closes and connects an upstream again (stdio: a new subprocess). Resolves when connected or
   * failed (state `error`, logged); rejects only for an unknown name. A recovery in progress is
   * cancelled first; supervision resumes afterwards (after a failure: a new backoff schedule).
   */
  async reconnect(name: string): Promise<Upstream> {
    const upstream = this.upstreams.get(name);
    if (!upstream) throw new Error(`upstream ${name} does not exist`);
    this.unsupervise(upstream);
    await upstream.close('reconnect');
    const started = Date.now();
    try {
      await upstream.connect();
      this.bus.publish({
        event_type: 'McpServerStarted',
        mcp_server_id: name,
        mode: upstream.config.connection_type,
        tools_count: upstream.catalogue.tools.length,
        startup_duration_ms: Date.now() - started,
      });
    } catch (err) {
      this.log.error('upstream failed to reconnect', { upstream: name, error: err });
    }
    this.rebuild('tools');
    this.rebuild('resources');
    this.rebuild('prompts');
    this.supervise(upstream);
    return upstream;
  }

  /**
   * Why a downstream tool name does not route: `filtered` when it names a tool an upstream has but
   * its `tools_to_execute` hides (or `disallowed_actions` denies), else `unknown`.
   */
  explainMissingTool(downstreamName: string): 'filtered' | 'unknown' {
    for (const u of this.upstreams.values()) {
      const prefix = toolPrefixFor(u.name, u.config.tool_prefix);
      for (const tool of u.catalogue.tools) {
        if (namespacedName(prefix, tool['name'] as string) === downstreamName) return 'filtered';
      }
    }
    return 'unknown';
  }

  /** Closes and forgets an upstream; its tools leave the catalogue. */
  async remove(name: string, reason = 'removed'): Promise<void> {
    const upstream = this.upstreams.get(name);
    if (!upstream) return;
    this.upstreams.delete(name);
    this.unsupervise(upstream);
    await upstream.principals?.close(reason);
    await upstream.close(reason);
    this.subs.get(name)?.unsubscribe();
    this.subs.delete(name);
    upstream.dispose();
    this.bus.publish({ event_type: 'McpServerStopped', mcp_server_id: name, reason });
    this.rebuild('tools');
    this.rebuild('resources');
    this.rebuild('prompts');
  }

  /**
   * The gateway is stopping: supervision ends for every upstream at once (no reconnect, no respawn
   * of a subprocess that exits from now on, no retry in progress goes on), while calls in flight
   * keep their connections until {@link closeAll}. Idempotent.
   */
  beginShutdown(): void {
    this.shuttingDown = true;
    for (const u of this.upstreams.values()) this.unsupervise(u);
  }

  /** Whether {@link beginShutdown} was called. */
  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Kills every stdio subprocess group at once (SIGKILL, no wait): for a gateway told to stop immediately. */
  killAll(): void {
    this.beginShutdown();
    for (const u of this.upstreams.values()) u.killNow();
  }

  /** Closes every upstream (subprocesses end) after stopping their supervision: nothing reconnects or respawns afterwards. */
  async closeAll(reason = 'shutdown'): Promise<void> {
    this.beginShutdown();
    await Promise.all([...this.upstreams.keys()].map((n) => this.remove(n, reason)));
  }

  /** Stops supervision for good (after {@link closeAll}). */
  dispose(): void {
    this.supervision.unsubscribe();
  }

  private rebuild(kind: CatalogueKind): void {
    const next: Index = { ...this.index };
    if (kind === 'tools') {
      [next.tools, next.toolRoutes] = this.namespaced('tool', (u) => u.catalogue.tools, (u, name) => isToolAllowed(u.config.tools_to_execute, name) && u.config.disallowed_actions?.includes(name) !== true);
    } else if (kind === 'prompts') {
      [next.prompts, next.promptRoutes] = this.namespaced('prompt', (u) => u.catalogue.prompts, () => true);
    } else {
      next.resources = [];
      next.resourceRoutes = new Map();
      next.resourceTemplates = [];
      next.templatePrefixes = [];
      const templateOwners = new Map<string, Upstream>();
      const conflicts: ResourceConflict[] = [];
      // upstreams in creation order: the first to claim a URI (or a URI template) keeps it
      for (const u of this.upstreams.values()) {
        for (const r of u.catalogue.resources) {
          const uri = r['uri'] as string;
          const owner = next.resourceRoutes.get(uri);
          if (owner) {
            if (owner !== u) conflicts.push({ kind: 'resource', uri, kept: owner.name, hidden: u.name });
            continue;
          }
          next.resourceRoutes.set(uri, u);
          next.resources.push(r);
        }
        for (const tpl of u.catalogue.resourceTemplates) {
          const uriTemplate = tpl['uriTemplate'] as string;
          const owner = templateOwners.get(uriTemplate);
          if (owner) {
            if (owner !== u) conflicts.push({ kind: 'resource_template', uri: uriTemplate, kept: owner.name, hidden: u.name });
            continue;
          }
          templateOwners.set(uriTemplate, u);
          next.resourceTemplates.push(tpl);
          const brace = uriTemplate.indexOf('{');
          next.templatePrefixes.push({ prefix: brace < 0 ? uriTemplate : uriTemplate.slice(0, brace), upstream: u });
        }
      }
      // longest prefix first; equal lengths keep creation order (Array.prototype.sort is stable)
      next.templatePrefixes.sort((a, b) => b.prefix.length - a.prefix.length);
      this.reportConflicts(conflicts);
    }
    this.index = next;
    this.changedSubject.next(kind);
  }

  /**
   * Warns once per conflict (log and a `ResourceUriConflict` event) when two upstreams claim one
   * resource URI or URI template; a conflict that goes away and comes back is reported again.
   */
  private reportConflicts(conflicts: readonly ResourceConflict[]): void {
    const current = new Set<string>();
    for (const c of conflicts) {
      const key = `${c.kind}\u0000${c.uri}\u0000${c.kept}\u0000${c.hidden}`;
      current.add(key);
      if (this.reportedConflicts.has(key)) continue;
      this.log.warn('resource URI claimed by two upstreams; the first keeps it', { kind: c.kind, uri: c.uri, kept_by: c.kept, hidden_from: c.hidden });
      this.bus.publish({ event_type: 'ResourceUriConflict', mcp_server_id: c.hidden, kind: c.kind, uri: c.uri, kept_by: c.kept });
    }
    this.reportedConflicts = current;
  }

  /** Downstream items (tools or prompts) named `prefix + name`, and their routes; first name wins a clash. */
  private namespaced(
    what: string,
    items: (u: Upstream) => readonly JsonObject[],
    allowed: (u: Upstream, name: string) => boolean,
  ): [JsonObject[], Map<string, Route>] {
    const list: JsonObject[] = [];
    const routes = new Map<string, Route>();
    for (const u of this.upstreams.values()) {
      const prefix = toolPrefixFor(u.name, u.config.tool_prefix);
      for (const item of items(u)) {
        const name = item['name'] as string;
        if (!allowed(u, name)) continue;
        const downstream = namespacedName(prefix, name);
        if (routes.has(downstream)) {
          this.log.warn(`${what} name clash; keeping the first`, { name: downstream, upstream: u.name });
          continue;
        }
        routes.set(downstream, { upstream: u, name });
        list.push({ ...item, name: downstream });
      }
    }
    return [list, routes];
  }

  /** Downstream tools in aggregate order. The array is replaced, never mutated, on change. */
  get tools(): readonly JsonObject[] {
    return this.index.tools;
  }

  get prompts(): readonly JsonObject[] {
    return this.index.prompts;
  }

  get resources(): readonly JsonObject[] {
    return this.index.resources;
  }

  get resourceTemplates(): readonly JsonObject[] {
    return this.index.resourceTemplates;
  }

  routeTool(downstreamName: string): Route | undefined {
    return this.index.toolRoutes.get(downstreamName);
  }

  routePrompt(downstreamName: string): Route | undefined {
    return this.index.promptRoutes.get(downstreamName);
  }

  /**
   * The upstream owning a resource URI: a listed resource, else the longest resource-template
   * prefix, else the only upstream offering resources, else undefined.
   */
  routeResource(uri: string): Upstream | undefined {
    const exact = this.index.resourceRoutes.get(uri);
    if (exact) return exact;
    for (const { prefix, upstream } of this.index.templatePrefixes) if (prefix !== '' && uri.startsWith(prefix)) return upstream;
    const withResources = this.list().filter((u) => u.serverCapabilities.resources);
    return withResources.length === 1 ? withResources[0] : undefined;
  }

  /** Capabilities the aggregate offers downstream: the union of what the upstreams offer. */
  aggregateCapabilities(): ServerCapabilities {
    const ups = this.list();
    const any = (f: (c: ServerCapabilities) => unknown): boolean => ups.some((u) => Boolean(f(u.serverCapabilities)));
    const caps: ServerCapabilities = { tools: { listChanged: true }, logging: {} };
    if (any((c) => c.resources)) caps.resources = { listChanged: true, subscribe: true };
    if (any((c) => c.prompts)) caps.prompts = { listChanged: true };
    if (any((c) => c.completions)) caps.completions = {};
    return caps;
  }
}
