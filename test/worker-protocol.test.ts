/**
 * The packed form of the per-call messages between the owner and the worker threads
 * (`src/server/worker-protocol.ts`): a `call` and an `rpc` must come out of the port as they went
 * in, whatever their strings hold (JSON text with newlines and the separator character, non-Latin-1
 * text, surrogate pairs, empty fields), and the other messages must keep their place in the batch.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MessageChannel } from 'node:worker_threads';
import { Outbox, packFromWorker, packToWorker, unpackFromWorker, unpackToWorker, type FromWorker, type ToWorker, type Wire } from '../src/server/worker-protocol.js';
import { callRequest, WORKER_CALL_METHODS, type WorkerCall } from '../src/handlers/mcp/worker-calls.js';

const text = fc.string({ unit: 'binary', maxLength: 40 });

/** A JSON-RPC request as a client may send it: any id, method and params, any spacing. */
const request = fc.record({
  jsonrpc: fc.constant('2.0'),
  id: fc.oneof(fc.integer(), fc.string({ unit: 'binary', maxLength: 12 })),
  method: fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }),
  params: fc.dictionary(fc.string({ unit: 'binary', maxLength: 8 }), fc.jsonValue({ maxDepth: 3 })),
});

const call = fc
  .record({
    id: fc.nat(),
    session: text,
    key: fc.option(fc.record({ kind: fc.constantFrom('api_key' as const, 'virtual_key' as const), id: text }), { nil: undefined }),
    bearer: text,
    request,
    indent: fc.constantFrom(undefined, 1, '\n\t'),
    canSse: fc.boolean(),
    sseOnly: fc.boolean(),
    traceparent: text,
    tracestate: text,
  })
  .map(({ request: r, indent, ...c }): WorkerCall => {
    const body = JSON.stringify(r, undefined, indent);
    return { t: 'call', ...c, body };
  });

const rpc = fc.record({ t: fc.constant('rpc' as const), id: fc.nat(), body: text });

/** Sends `messages` through an `Outbox` over a real `MessagePort` (structured clone) and returns what arrives, unpacked. */
async function through<M>(messages: readonly M[], pack: (m: M) => string | undefined, unpack: (run: string, each: (m: M) => void) => void): Promise<{ got: M[]; strings: number }> {
  const { port1, port2 } = new MessageChannel();
  const arrived = new Promise<Wire<M>>((resolve) => port2.once('message', resolve));
  const outbox = new Outbox<M>((batch, transfer) => port1.postMessage(batch, transfer), pack);
  for (const m of messages) outbox.push(m);
  outbox.flush();
  const wire = await arrived;
  port1.close();
  const got: M[] = [];
  for (const m of wire) {
    if (typeof m === 'string') unpack(m, (x) => got.push(x));
    else got.push(m);
  }
  return { got, strings: wire.filter((m) => typeof m === 'string').length };
}

describe('packed worker messages', () => {
  it('a batch of calls and other messages arrives whole and in order (fast-check)', async () => {
    const other = fc.oneof(
      fc.record({ t: fc.constant('abort' as const), id: fc.nat() }),
      fc.record({ t: fc.constant('ws-buffered' as const), id: fc.nat(), bytes: fc.nat() }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(call, other), { minLength: 1, maxLength: 12 }), async (messages: FromWorker[]) => {
        const { got, strings } = await through<FromWorker>(messages, packFromWorker, unpackFromWorker);
        expect(got).toEqual(messages);
        // consecutive calls share one string
        let runs = 0;
        messages.forEach((m, i) => {
          if (m.t === 'call' && messages[i - 1]?.t !== 'call') runs++;
        });
        expect(strings).toBe(runs);
      }),
      { numRuns: 150 },
    );
  });

  it('a batch of replies and other messages arrives whole and in order (fast-check)', async () => {
    const other = fc.oneof(
      fc.record({ t: fc.constant('carry' as const), id: fc.nat() }),
      fc.record({ t: fc.constant('res' as const), id: fc.nat(), status: fc.constant('200 OK'), headers: fc.constant<string[]>(['content-type', 'text/event-stream']), chunk: text, end: fc.boolean(), noBody: fc.constant(false), close: fc.constant(false) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(rpc, other), { minLength: 1, maxLength: 12 }), async (messages: ToWorker[]) => {
        const { got } = await through<ToWorker>(messages, packToWorker, unpackToWorker);
        expect(got).toEqual(messages);
      }),
      { numRuns: 150 },
    );
  });

  it('a run that is not one is an error, not a wrong message', () => {
    const good = packToWorker({ t: 'rpc', id: 7, body: '{"jsonrpc":"2.0","id":1,"result":{}}' }) ?? '';
    expect(() => unpackToWorker(good.slice(0, -3), () => undefined)).toThrow(/past the end/);
    expect(() => unpackToWorker(`x${good}`, () => undefined)).toThrow(/unknown record/);
    expect(() => unpackToWorker('r1x;', () => undefined)).toThrow(/a number expected/);
    expect(() => unpackFromWorker(good, () => undefined)).toThrow(/unknown record/);
  });
});

describe("the owner's framing of a worker call (callRequest: the body's only parse)", () => {
  const MODERN = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' };
  const valid = fc.record({
    jsonrpc: fc.constant('2.0'),
    id: fc.oneof(fc.integer(), fc.string({ maxLength: 8 })),
    method: fc.constantFrom(...WORKER_CALL_METHODS),
    params: fc.record({ name: fc.string({ maxLength: 8 }), arguments: fc.dictionary(fc.string({ maxLength: 4 }), fc.jsonValue({ maxDepth: 2 })) }),
  });

  it('a request of the fast path comes back parsed, whatever its spacing (fast-check)', () => {
    fc.assert(
      fc.property(valid, fc.constantFrom(undefined, 1, '\n\t'), (r, indent) => {
        const body = JSON.stringify(r, undefined, indent);
        // what JSON gives back (a generated -0 comes back as 0)
        expect(callRequest(body)).toEqual(JSON.parse(body));
        expect(callRequest(body)).toBeDefined();
      }),
      { numRuns: 200 },
    );
  });

  it('anything else is undefined (the call is carried), never an exception (fast-check)', () => {
    // [never a call?, body]: text and JSON values may happen to be a call (then exactly that call)
    const other = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 40 }).map((b) => [false, b] as const),
      fc.jsonValue({ maxDepth: 3 }).map((v) => [false, JSON.stringify(v)] as const),
      valid.map((r) => [true, JSON.stringify({ ...r, method: 'initialize' })] as const),
      valid.map((r) => [true, JSON.stringify({ jsonrpc: r.jsonrpc, method: r.method, params: r.params })] as const),
      valid.map((r) => [true, JSON.stringify({ ...r, jsonrpc: '1.0' })] as const),
      valid.map((r) => [true, JSON.stringify([r])] as const),
      valid.map((r) => [true, JSON.stringify({ ...r, params: { ...r.params, _meta: MODERN } })] as const),
      valid.map((r) => [true, `${JSON.stringify(r)}}`] as const),
    );
    fc.assert(
      fc.property(other, ([never, body]) => {
        const got = callRequest(body);
        if (never) expect(got).toBeUndefined();
        else if (got !== undefined) expect(got).toEqual(JSON.parse(body));
      }),
      { numRuns: 300 },
    );
    expect(callRequest('{"jsonrpc":"2.0","method":"tools/call","params":{}}')).toBeUndefined();
  });
});
