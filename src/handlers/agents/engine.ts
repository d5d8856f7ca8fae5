/**
 * The assignment engine of agent orchestration (developer-mesh `assignment_engine.go`,
 * https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md, "AI Agent Orchestration"): which available agent gets a task, and
 * the bounded priority queue of tasks no agent can take yet. Pure and synchronous: no I/O, no
 * clock, no sockets; one instance per tenant. The orchestrator applies its decisions (records,
 * events, notifications).
 *
 * Rules:
 * - An agent is *eligible* while its status is `available`, it is ready (registration finished) and
 *   it holds fewer than `maxTasksPerAgent` tasks. It can take a task when it is eligible, its
 *   capabilities are a superset of the task's required capabilities, and the task names no other
 *   agent (`target`).
 * - `least_loaded`: the agent holding the fewest tasks; ties go to the agent idle the longest
 *   (least recently given or relieved of a task), then to the earliest registered.
 * - `round_robin`: the next agent in registration order after the one chosen last (per tenant),
 *   wrapping around, among those that can take the task.
 * - Tasks nobody can take wait in the queue: higher priority first (critical, high, normal, low),
 *   FIFO (by `seq`) within a priority. At most `maxQueued` tasks wait unless forced (re-queued
 *   tasks are forced in: they were accepted already, and their number is bounded by agents ×
 *   `maxTasksPerAgent`).
 * - Invariant kept by the callers: after every operation no queued task could be taken by an
 *   eligible agent ({@link AssignmentEngine.drain} runs whenever an agent gains room).
 *
 * Cost: agents are indexed by capability; choosing an agent scans the agents having the rarest
 * required capability (all agents for a task requiring none), O(agents). Queued tasks are grouped
 * by (required capabilities, target); filling an agent looks at the head of each group,
 * O(groups) per task handed out.
 */

/** Task priorities, highest first. */
export const PRIORITIES = ['critical', 'high', 'normal', 'low'] as const;
/** A task priority (developer-mesh: low|normal|high|critical). */
export type TaskPriority = (typeof PRIORITIES)[number];

/** An agent's status as it reports it (`agent.status`), or `offline` when it went away. */
export type AgentStatus = 'available' | 'busy' | 'offline';

/** How an agent is chosen among those that can take a task (config `orchestration.strategy`). */
export type AssignmentStrategy = 'least_loaded' | 'round_robin';

const RANK: Readonly<Record<TaskPriority, number>> = { critical: 0, high: 1, normal: 2, low: 3 };

/** The engine's tuning (config `orchestration`). */
export interface EngineOptions {
  readonly strategy: AssignmentStrategy;
  /** Most tasks waiting (not forced) before {@link AssignmentEngine.submit} throws {@link QueueFullError}. */
  readonly maxQueued: number;
  /** Most tasks one agent holds at once. */
  readonly maxTasksPerAgent: number;
}

/** What the engine knows of a task. */
export interface EngineTask {
  readonly id: string;
  readonly priority: TaskPriority;
  /** Capabilities the agent must have; no duplicates. */
  readonly required: readonly string[];
  /** The only agent that may take it (explicit `agent_id`), or undefined for any. */
  readonly target: string | undefined;
  /** Arrival order, unique and increasing; FIFO within a priority (re-queued tasks keep theirs). */
  readonly seq: number;
}

/** One decision: `taskId` goes to `agentId`. */
export interface Assignment {
  readonly taskId: string;
  readonly agentId: string;
}

/** A read-only view of an agent in the engine. */
export interface EngineAgentView {
  readonly id: string;
  readonly capabilities: ReadonlySet<string>;
  readonly status: AgentStatus;
  readonly ready: boolean;
  /** Ids of the tasks it holds. */
  readonly tasks: ReadonlySet<string>;
}

/** Thrown by {@link AssignmentEngine.submit} when the queue holds `maxQueued` tasks. */
export class QueueFullError extends Error {
  override readonly name = 'QueueFullError';
  constructor(
    readonly maxQueued: number,
    readonly queued: number,
  ) {
    super(`task queue full (${queued} waiting, limit ${maxQueued})`);
  }
}

interface Slot {
  readonly id: string;
  capabilities: Set<string>;
  status: AgentStatus;
  ready: boolean;
  readonly tasks: Set<string>;
  /** Tick of its last assignment or release (smaller = idle longer). */
  touched: number;
  /** Registration order (round-robin order, last tie-break). */
  readonly order: number;
}

/** FIFO of one priority in one group, kept sorted by `seq`. */
class Bucket {
  private items: EngineTask[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  peek(): EngineTask | undefined {
    return this.items[this.head];
  }

  shift(): EngineTask | undefined {
    const t = this.items[this.head];
    if (t === undefined) return undefined;
    this.head++;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 64 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return t;
  }

  /** Inserts in `seq` order: O(1) for the newest, binary search + splice for a re-queued one. */
  insert(task: EngineTask): void {
    const last = this.items[this.items.length - 1];
    if (this.size === 0 || (last !== undefined && last.seq < task.seq)) {
      this.items.push(task);
      return;
    }
    let lo = this.head;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.items[mid] as EngineTask).seq < task.seq) lo = mid + 1;
      else hi = mid;
    }
    this.items.splice(lo, 0, task);
  }

  *values(): Iterable<EngineTask> {
    for (let i = this.head; i < this.items.length; i++) yield this.items[i] as EngineTask;
  }
}

/** Queued tasks sharing required capabilities and target: one bucket per priority. */
interface Group {
  readonly key: string;
  readonly required: readonly string[];
  readonly target: string | undefined;
  readonly buckets: readonly Bucket[];
  size: number;
}

function groupKey(required: readonly string[], target: string | undefined): string {
  const caps = required.length <= 1 ? required.join('') : [...required].sort().join('\u0001');
  return `${target ?? ''}\u0000${caps}`;
}

function headOf(g: Group): EngineTask | undefined {
  for (const b of g.buckets) {
    const t = b.peek();
    if (t !== undefined) return t;
  }
  return undefined;
}

/** `a` goes before `b`: higher priority, then lower seq. */
function before(a: EngineTask, b: EngineTask): boolean {
  const ra = RANK[a.priority];
  const rb = RANK[b.priority];
  return ra !== rb ? ra < rb : a.seq < b.seq;
}

/** One tenant's agents and queue. Not thread-safe and not re-entrant (plain synchronous calls). */
export class AssignmentEngine {
  private readonly agents = new Map<string, Slot>();
  private readonly byCapability = new Map<string, Set<Slot>>();
  private readonly groups = new Map<string, Group>();
  private queued = 0;
  private tick = 0;
  private nextOrder = 0;
  /** `order` of the agent chosen last by round-robin. */
  private cursor = -1;

  constructor(readonly options: EngineOptions) {}

  /** Tasks waiting. */
  get queueSize(): number {
    return this.queued;
  }

  /** Agents known (any status). */
  get agentCount(): number {
    return this.agents.size;
  }

  /** The agent `id`, or undefined. */
  agent(id: string): EngineAgentView | undefined {
    return this.agents.get(id);
  }

  /** Every agent, in no particular order. */
  agentViews(): Iterable<EngineAgentView> {
    return this.agents.values();
  }

  /**
   * Adds agent `id` (status `available`, holding nothing) or, when known, replaces its capabilities
   * and sets it `available` (the tasks it holds stay). Call {@link drain} once it is ready.
   */
  upsertAgent(id: string, capabilities: readonly string[], ready: boolean): void {
    let slot = this.agents.get(id);
    if (slot === undefined) {
      slot = { id, capabilities: new Set(capabilities), status: 'available', ready, tasks: new Set(), touched: ++this.tick, order: this.nextOrder++ };
      this.agents.set(id, slot);
    } else {
      this.unindex(slot);
      slot.capabilities = new Set(capabilities);
      slot.status = 'available';
      slot.ready = ready;
    }
    for (const c of slot.capabilities) {
      let set = this.byCapability.get(c);
      if (set === undefined) {
        set = new Set();
        this.byCapability.set(c, set);
      }
      set.add(slot);
    }
  }

  /** Marks agent `id` ready (or not); false when unknown. Call {@link drain} after making it ready. */
  setReady(id: string, ready: boolean): boolean {
    const slot = this.agents.get(id);
    if (slot === undefined) return false;
    slot.ready = ready;
    return true;
  }

  /**
   * Sets agent `id`'s status; false when unknown. `offline` does not release its tasks (see
   * {@link releaseAll}); call {@link drain} after setting `available`.
   */
  setStatus(id: string, status: AgentStatus): boolean {
    const slot = this.agents.get(id);
    if (slot === undefined) return false;
    slot.status = status;
    return true;
  }

  /** Forgets agent `id`; returns the ids of the tasks it held (the caller re-queues or fails them). */
  removeAgent(id: string): string[] {
    const slot = this.agents.get(id);
    if (slot === undefined) return [];
    this.unindex(slot);
    this.agents.delete(id);
    return [...slot.tasks];
  }

  /** Takes every task agent `id` holds away from it; returns their ids. */
  releaseAll(id: string): string[] {
    const slot = this.agents.get(id);
    if (slot === undefined) return [];
    const ids = [...slot.tasks];
    slot.tasks.clear();
    slot.touched = ++this.tick;
    return ids;
  }

  /** Whether agent `agentId` holds task `taskId`. */
  holds(agentId: string, taskId: string): boolean {
    return this.agents.get(agentId)?.tasks.has(taskId) === true;
  }

  /**
   * Task `taskId` left agent `agentId` (completed, failed, handed back); false when the agent did
   * not hold it. Call {@link drain} for the agent afterwards: it has room again.
   */
  finish(agentId: string, taskId: string): boolean {
    const slot = this.agents.get(agentId);
    if (slot === undefined || !slot.tasks.delete(taskId)) return false;
    slot.touched = ++this.tick;
    return true;
  }

  /**
   * Hands `task` to an agent that can take it (by the strategy) and returns that agent's id, or
   * queues it and returns undefined.
   * @param force queue even over `maxQueued` (re-queued and reloaded tasks).
   * @throws QueueFullError when it must wait, the queue is full and `force` is false.
   */
  submit(task: EngineTask, force = false): string | undefined {
    const slot = this.choose(task);
    if (slot !== undefined) {
      this.give(slot, task.id);
      return slot.id;
    }
    if (!force && this.queued >= this.options.maxQueued) throw new QueueFullError(this.options.maxQueued, this.queued);
    const key = groupKey(task.required, task.target);
    let g = this.groups.get(key);
    if (g === undefined) {
      g = { key, required: task.required, target: task.target, buckets: PRIORITIES.map(() => new Bucket()), size: 0 };
      this.groups.set(key, g);
    }
    (g.buckets[RANK[task.priority]] as Bucket).insert(task);
    g.size++;
    this.queued++;
    return undefined;
  }

  /**
   * Fills agent `agentId` from the queue while it is eligible: each time the highest-priority,
   * oldest task it can take. Returns the assignments made, in order (empty when it is not
   * eligible or nothing fits).
   */
  drain(agentId: string): Assignment[] {
    const slot = this.agents.get(agentId);
    if (slot === undefined || this.queued === 0 || !this.eligible(slot)) return [];
    const fits: Group[] = [];
    for (const g of this.groups.values()) if ((g.target === undefined || g.target === slot.id) && this.covers(slot, g.required)) fits.push(g);
    const out: Assignment[] = [];
    while (fits.length > 0 && this.eligible(slot)) {
      let best: Group | undefined;
      let bestTask: EngineTask | undefined;
      for (const g of fits) {
        const t = headOf(g);
        if (t !== undefined && (bestTask === undefined || before(t, bestTask))) {
          best = g;
          bestTask = t;
        }
      }
      if (best === undefined || bestTask === undefined) break;
      (best.buckets[RANK[bestTask.priority]] as Bucket).shift();
      best.size--;
      this.queued--;
      if (best.size === 0) {
        this.groups.delete(best.key);
        fits.splice(fits.indexOf(best), 1);
      }
      this.give(slot, bestTask.id);
      out.push({ taskId: bestTask.id, agentId: slot.id });
    }
    return out;
  }

  /** Queued tasks, highest priority first, FIFO within a priority (for inspection and tests). */
  queuedTasks(): EngineTask[] {
    const all: EngineTask[] = [];
    for (const g of this.groups.values()) for (const b of g.buckets) for (const t of b.values()) all.push(t);
    return all.sort((a, b) => (before(a, b) ? -1 : before(b, a) ? 1 : 0));
  }

  /** Whether agent `id` may be given a task now (status available, ready, under the per-agent limit). */
  isEligible(id: string): boolean {
    const slot = this.agents.get(id);
    return slot !== undefined && this.eligible(slot);
  }

  /** Whether an eligible agent could take `task` now. */
  canTake(task: Pick<EngineTask, 'required' | 'target'>): boolean {
    return this.choose(task) !== undefined;
  }

  private eligible(slot: Slot): boolean {
    return slot.status === 'available' && slot.ready && slot.tasks.size < this.options.maxTasksPerAgent;
  }

  private covers(slot: Slot, required: readonly string[]): boolean {
    for (const c of required) if (!slot.capabilities.has(c)) return false;
    return true;
  }

  private give(slot: Slot, taskId: string): void {
    slot.tasks.add(taskId);
    slot.touched = ++this.tick;
    this.cursor = slot.order;
  }

  private unindex(slot: Slot): void {
    for (const c of slot.capabilities) {
      const set = this.byCapability.get(c);
      if (set === undefined) continue;
      set.delete(slot);
      if (set.size === 0) this.byCapability.delete(c);
    }
  }

  /** The agent that should take `task` now, or undefined. O(candidates × required). */
  private choose(task: Pick<EngineTask, 'required' | 'target'>): Slot | undefined {
    if (task.target !== undefined) {
      const slot = this.agents.get(task.target);
      return slot !== undefined && this.eligible(slot) && this.covers(slot, task.required) ? slot : undefined;
    }
    let candidates: Iterable<Slot> = this.agents.values();
    if (task.required.length > 0) {
      let rarest: Set<Slot> | undefined;
      for (const c of task.required) {
        const set = this.byCapability.get(c);
        if (set === undefined) return undefined;
        if (rarest === undefined || set.size < rarest.size) rarest = set;
      }
      candidates = rarest as Set<Slot>;
    }
    return this.options.strategy === 'round_robin' ? this.roundRobin(candidates, task.required) : this.leastLoaded(candidates, task.required);
  }

  private leastLoaded(candidates: Iterable<Slot>, required: readonly string[]): Slot | undefined {
    let best: Slot | undefined;
    for (const s of candidates) {
      if (!this.eligible(s) || !this.covers(s, required)) continue;
      if (
        best === undefined ||
        s.tasks.size < best.tasks.size ||
        (s.tasks.size === best.tasks.size && (s.touched < best.touched || (s.touched === best.touched && s.order < best.order)))
      ) {
        best = s;
      }
    }
    return best;
  }

  private roundRobin(candidates: Iterable<Slot>, required: readonly string[]): Slot | undefined {
    let next: Slot | undefined;
    let first: Slot | undefined;
    for (const s of candidates) {
      if (!this.eligible(s) || !this.covers(s, required)) continue;
      if (first === undefined || s.order < first.order) first = s;
      if (s.order > this.cursor && (next === undefined || s.order < next.order)) next = s;
    }
    return next ?? first;
  }
}
