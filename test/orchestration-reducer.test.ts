/**
 * The orchestration reducer (`OrchestrationState.step`) in virtual time with RxJS marbles: commands
 * arrive on a hot stream, each step's effects come out as letters. No sockets, no LevelDB, no
 * clock: `now` is the TestScheduler's frame, ids come from a counter, and the heartbeat check is an
 * `interval` on the TestScheduler, so "an agent silent for longer than heartbeat_timeout_ms goes
 * offline" is checked at an exact virtual time instead of after a sleep.
 */
import { describe, expect, it } from 'vitest';
import { TestScheduler } from 'rxjs/testing';
import { map, merge, type Observable } from 'rxjs';
import { OrchestrationState } from '../src/handlers/agents/orchestration-state.js';
import type { OrchestrationCommand, OrchestrationEffect, OrchestrationReply, OrchestrationStep } from '../src/handlers/agents/orchestration-types.js';
import type { WsPeer } from '../src/streams/ws-methods.js';

function scheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
}

/** A peer handle: the reducer only reads `id`, `auth` and `lastMessageAt`. */
function peer(id: string): WsPeer {
  return { id, auth: undefined, binary: false, notify: () => true, bufferedAmount: () => 0, lastMessageAt: 0, closed: false };
}

function reducer(config: Partial<ConstructorParameters<typeof OrchestrationState>[0]['config']> = {}): OrchestrationState {
  let n = 0;
  return new OrchestrationState({
    config: { strategy: 'least_loaded', max_queued_tasks: 2, max_tasks_per_agent: 1, max_attempts: 2, heartbeat_timeout_ms: 100, ...config },
    newId: (prefix) => `${prefix}-${++n}`,
  });
}

/**
 * One letter per effect kind and event: `Q` TaskQueued, `A` TaskAssigned, `R` AgentRegistered,
 * `O` AgentOffline, `S` AgentStatusChanged, `U` TaskUpdated, `C` TaskCompleted, `F` TaskFailed,
 * `p` persist, `n` a notification (`a` when it is a task.assigned, `v` task.revoked), `l` a log
 * line; then the reply: `=` a result, `!` an error, `s` saveAgent, `?` explainMissing.
 */
function letters(step: OrchestrationStep): string {
  const effect = (e: OrchestrationEffect): string => {
    switch (e.kind) {
      case 'persist':
        return 'p';
      case 'log':
        return 'l';
      case 'notify':
        return e.params['type'] === 'task.assigned' ? 'a' : e.params['type'] === 'task.revoked' ? 'v' : 'n';
      case 'publish':
        return (
          { TaskQueued: 'Q', TaskAssigned: 'A', AgentRegistered: 'R', AgentOffline: 'O', AgentStatusChanged: 'S', TaskUpdated: 'U', TaskCompleted: 'C', TaskFailed: 'F' } as Record<string, string>
        )[e.event.event_type] ?? '*';
    }
  };
  const reply = (r: OrchestrationReply | undefined): string => (r === undefined ? '' : { result: '=', error: '!', saveAgent: 's', explainMissing: '?' }[r.kind]);
  return step.effects.map(effect).join('') + reply(step.reply);
}

/** Runs each command through `state`, stamping it with the virtual `now`. */
function drive(ts: TestScheduler, state: OrchestrationState, commands: Observable<(now: number) => OrchestrationCommand>): Observable<OrchestrationStep> {
  return commands.pipe(map((make) => state.step(make(ts.now()))));
}

describe('orchestration reducer (marbles)', () => {
  it('queues a task nobody can take, hands it to the agent once its registration is written, and completes it', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      const state = reducer();
      const boss = peer('boss');
      const worker = peer('worker');
      let agent: OrchestrationReply | undefined;
      const commands: Record<string, (now: number) => OrchestrationCommand> = {
        t: (now) => ({ type: 'call', peer: boss, method: 'task.assign', params: { type: 'review', required_capabilities: ['code'] }, now }),
        r: (now) => ({ type: 'call', peer: worker, method: 'agent.register', params: { name: 'w', capabilities: ['code'] }, now }),
        y: (now) => ({ type: 'agentReady', agent: agent?.kind === 'saveAgent' ? agent.agent : { id: '?', tenant: '?' }, now }),
        c: (now) => ({ type: 'call', peer: worker, method: 'task.complete', params: { task_id: 'task-1', result: { ok: true } }, now }),
      };
      const steps = drive(ts, state, hot('t-r-y-c', commands)).pipe(
        map((step) => {
          if (step.reply?.kind === 'saveAgent') agent = step.reply;
          return letters(step);
        }),
      );
      // queued (written, event, reply) → registered, not ready: no task yet → ready: assigned,
      // written, the agent told, the assigner told → completed, written, the assigner told
      expectObservable(steps).toBe('a-b-c-d', { a: 'pQ=', b: 'Rs', c: 'pAan', d: 'pCn=' });
    });
  });

  it('an agent that stays silent past heartbeat_timeout_ms goes offline at the first check after it, and its task goes back to the queue', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      const state = reducer({ heartbeat_timeout_ms: 100, max_attempts: 3 });
      const boss = peer('boss');
      const worker = peer('worker');
      let agent: OrchestrationReply | undefined;
      const calls = hot('r 9ms y 9ms t', {
        r: (now: number): OrchestrationCommand => ({ type: 'call', peer: worker, method: 'agent.register', params: { name: 'w', capabilities: [] }, now }),
        y: (now: number): OrchestrationCommand => ({ type: 'agentReady', agent: agent?.kind === 'saveAgent' ? agent.agent : { id: '?', tenant: '?' }, now }),
        t: (now: number): OrchestrationCommand => ({ type: 'call', peer: boss, method: 'task.assign', params: { type: 'x' }, now }),
      });
      // the sinks' heartbeat timer: every 25 ms (a quarter of the timeout), here in virtual time
      const ticks = ts.createColdObservable('25ms a 24ms a 24ms a 24ms a 24ms a 24ms a', { a: (now: number): OrchestrationCommand => ({ type: 'tick', now }) });
      const steps = drive(ts, state, merge(calls, ticks)).pipe(
        map((step) => {
          if (step.reply?.kind === 'saveAgent') agent = step.reply;
          return letters(step);
        }),
      );
      // registered at 0 and silent after: still alive at the checks of 25, 50, 75 and 100 ms
      // (silent ≤ 100 ms), offline at 125 ms with its task re-queued (revoked, queued, written,
      // the assigner told); later checks find nothing to do
      expectObservable(steps).toBe('a 9ms b 9ms c 4ms d 24ms d 24ms d 24ms d 24ms e 24ms d', {
        a: 'Rs',
        b: '',
        c: 'pAa=',
        d: '',
        e: 'lOvQpn',
      });
    });
  });

  it('a full queue refuses with OVERLOADED and changes nothing; a bad message is an error reply, not a throw', () => {
    const ts = scheduler();
    ts.run(({ hot, expectObservable }) => {
      const state = reducer({ max_queued_tasks: 2 });
      const boss = peer('boss');
      const assign = (now: number): OrchestrationCommand => ({ type: 'call', peer: boss, method: 'task.assign', params: { type: 'x' }, now });
      const commands = {
        t: assign,
        b: (now: number): OrchestrationCommand => ({ type: 'call', peer: boss, method: 'task.assign', params: { type: 'x', bogus: 1 }, now }),
        h: (now: number): OrchestrationCommand => ({ type: 'call', peer: boss, method: 'agent.heartbeat', params: {}, now }),
      };
      const steps = drive(ts, state, hot('tttbh', commands));
      expectObservable(steps.pipe(map(letters))).toBe('abccc', { a: 'pQ=', b: 'pQ=', c: '!' });
      const codes = drive(ts, state, hot('-----t', commands)).pipe(map((s) => (s.reply?.kind === 'error' ? (s.reply.error as { code?: string }).code : s.reply?.kind)));
      expectObservable(codes).toBe('-----o', { o: 'OVERLOADED' });
      ts.schedule(() => expect(state.stats.queued).toBe(2), 6);
    });
    expect(reducer().stats).toEqual({ agents: { available: 0, busy: 0, offline: 0 }, queued: 0, inFlight: 0 });
  });

  it('a task.assigned that cannot be sent feeds back `unreachable`: the agent is dropped and its task re-queued', () => {
    const state = reducer();
    const boss = peer('boss');
    const worker = peer('worker');
    const reg = state.step({ type: 'call', peer: worker, method: 'agent.register', params: { name: 'w', capabilities: [] }, now: 0 });
    if (reg.reply?.kind !== 'saveAgent') throw new Error('expected saveAgent');
    state.step({ type: 'agentReady', agent: reg.reply.agent, now: 1 });
    const assigned = state.step({ type: 'call', peer: boss, method: 'task.assign', params: { type: 'x' }, now: 2 });
    const notify = assigned.effects.find((e) => e.kind === 'notify');
    expect(notify?.kind === 'notify' ? notify.unreachable : undefined).toBe(reg.reply.agent);
    const dropped = state.step({ type: 'unreachable', agent: reg.reply.agent, now: 3 });
    expect(letters(dropped)).toBe('OvQpn');
    expect(state.statusOf('default', reg.reply.agent.id)).toBeUndefined();
    expect(state.stats.queued).toBe(1);
    // a stale handle (the agent already gone) changes nothing
    expect(letters(state.step({ type: 'unreachable', agent: reg.reply.agent, now: 4 }))).toBe('');
  });
});
