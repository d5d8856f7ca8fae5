/**
 * Readiness, apart from liveness: a gateway takes MCP traffic only after its initial catalogue
 * load (every configured upstream connected and listed, or failed), or after a bounded wait
 * (`server.ready_timeout_ms`), whichever comes first. After the bound it serves what it has and
 * says so (`initial_load: "timed_out"`, the upstreams still loading) in `/health` and
 * `/health/ready`.
 *
 * The probes follow Kubernetes' split (https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/):
 * liveness answers 200 while the process serves HTTP at all; readiness answers 503 until the
 * initial load is over and again while draining, so a load balancer sends no traffic to a gateway
 * that would answer "Unknown tool".
 *
 * MCP requests that arrive before readiness (`POST /mcp`, `/ws` messages) are held, not refused,
 * and run in arrival order once ready; the hold never outlasts the bound.
 */
import { BehaviorSubject, filter, firstValueFrom, map, take, type Observable } from 'rxjs';

/** How the initial catalogue load ended: `complete` (every upstream tried) or `timed_out` (the bound passed first). */
export type InitialLoad = 'pending' | 'complete' | 'timed_out';

/** What holds MCP traffic until the gateway is ready. */
export interface ReadinessGate {
  /** True once MCP traffic is served (it stays true; draining is reported separately). */
  readonly ready: boolean;
  /** Resolves once {@link ready} is true (at once if it already is). */
  whenReady(): Promise<void>;
}

/** The readiness part of a health body. */
export interface ReadinessDetail {
  readonly ready: boolean;
  readonly initial_load: InitialLoad;
  /** How long the initial load took, or had taken when the bound passed, ms. */
  readonly initial_load_ms: number | undefined;
  /** Upstreams still connecting when the bound passed (empty otherwise). */
  readonly pending_upstreams: readonly string[];
}

export class Readiness implements ReadinessGate {
  private readonly state$ = new BehaviorSubject<InitialLoad>('pending');
  private startedAt = Date.now();
  private loadMs: number | undefined;
  private pending: readonly string[] = [];
  /** Emits once when the gateway becomes ready, then completes. */
  readonly ready$: Observable<void> = this.state$.pipe(
    filter((s) => s !== 'pending'),
    take(1),
    map(() => undefined),
  );

  get ready(): boolean {
    return this.state$.value !== 'pending';
  }

  get initialLoad(): InitialLoad {
    return this.state$.value;
  }

  whenReady(): Promise<void> {
    return this.ready ? Promise.resolve() : firstValueFrom(this.ready$);
  }

  /** The initial load starts now (the port is bound, upstreams are being connected). */
  begin(now = Date.now()): void {
    this.startedAt = now;
  }

  /** Every configured upstream was tried. Ready from now on; after a time-out, clears the pending list. */
  loaded(now = Date.now()): void {
    if (this.state$.value === 'complete') return;
    this.loadMs = now - this.startedAt;
    this.pending = [];
    this.state$.next('complete');
  }

  /**
   * The bound passed with `pending` upstreams still connecting: ready from now on, serving what
   * is loaded. No-op once loaded.
   */
  timedOut(pending: readonly string[], now = Date.now()): void {
    if (this.state$.value !== 'pending') return;
    this.loadMs = now - this.startedAt;
    this.pending = [...pending];
    this.state$.next('timed_out');
  }

  detail(): ReadinessDetail {
    return { ready: this.ready, initial_load: this.state$.value, initial_load_ms: this.loadMs, pending_upstreams: this.pending };
  }
}
