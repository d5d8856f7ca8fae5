/**
 * Which downstream call a server→client request of a stdio upstream belongs to. stdio upstreams
 * do not say; the relay picks the call in flight on that upstream when all such calls come from
 * one session. A call the upstream has already answered, and that only waits for its durable
 * record, must not count: here the store's batch window holds session A's answered call for
 * 1.5 s while session B's call asks for an elicitation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { connectClient, everythingClient, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { waitFor } from './helpers/wait.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startTestGateway([everythingClient()], {}, { store: { batch_window_ms: 1500 } });
  await waitFor(() => gw.manager.get('everything')?.state === 'connected', 20_000);
}, 30_000);

afterAll(async () => {
  await gw?.stop();
});

describe('relay attribution', () => {
  it("does not count another session's call that the upstream already answered", async () => {
    const a = await connectClient(gw, {}, 'session-a');
    const b = await connectClient(gw, { elicitation: {} }, 'session-b');
    try {
      let aSettled = false;
      const aCall = a.callTool({ name: 'everything-echo', arguments: { message: 'from a' } }).finally(() => {
        aSettled = true;
      });
      // A's call is answered by the upstream and still held by A's session (its record waits for the batch window)
      await waitFor(() => (gw.manager.get('everything')?.inflight ?? 1) === 0 && [...gw.sessions.values()].some((s) => s.calls.size > 0), 5_000);
      let aPendingWhenAsked: boolean | undefined;
      b.setRequestHandler(ElicitRequestSchema, async () => {
        aPendingWhenAsked = !aSettled;
        return { action: 'accept', content: { name: 'Ada', check: true, firstLine: 'x', integer: 3, number: 1.5, untitledSingleSelectEnum: 'option1' } };
      });
      const bResult = await b.callTool({ name: 'everything-trigger-elicitation-request', arguments: {} });
      expect(JSON.stringify(bResult.content)).toMatch(/accept/i);
      // the case under test happened: A's answered call was still in its session when B's elicitation came
      expect(aPendingWhenAsked).toBe(true);
      const aResult = await aCall;
      expect(JSON.stringify(aResult.content)).toContain('from a');
    } finally {
      await a.close();
      await b.close();
    }
  }, 30_000);
});
