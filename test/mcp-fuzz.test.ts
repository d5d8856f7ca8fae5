/**
 * Property tests (fast-check) of the JSON-RPC boundary: `classify` never throws and always returns
 * a well-formed classification; random bytes, random JSON and random JSON-RPC-shaped messages
 * POSTed to a real gateway's /mcp always get an HTTP answer with a known status and, when JSON, a
 * well-formed JSON-RPC body; and the gateway still answers `ping` afterwards.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classify, type Classified } from '../src/codecs/jsonrpc.js';
import { demoClient, rawPost, rawSession, startTestGateway, type TestGateway } from './helpers/gateway.js';

type Json = Record<string, unknown>;

const ALLOWED_STATUSES = new Set([200, 202, 400, 404, 406, 413, 415]);

/** Methods the gateway serves (everything else must be -32601). */
const KNOWN_METHODS = [
  'initialize',
  'ping',
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'logging/setLevel',
];

function isRecord(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isId(v: unknown): boolean {
  return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
}

/** Why `v` is not a well-formed JSON-RPC 2.0 response object, or undefined if it is one. */
function responseProblem(v: unknown): string | undefined {
  if (!isRecord(v)) return 'not an object';
  if (v['jsonrpc'] !== '2.0') return 'jsonrpc is not "2.0"';
  const id = v['id'];
  if (id !== null && !isId(id)) return `bad id ${JSON.stringify(id)}`;
  const hasResult = 'result' in v;
  const hasError = 'error' in v;
  if (hasResult === hasError) return 'needs exactly one of result and error';
  if (hasResult) return isRecord(v['result']) ? undefined : 'result is not an object';
  const e = v['error'];
  if (!isRecord(e)) return 'error is not an object';
  if (typeof e['code'] !== 'number' || !Number.isInteger(e['code'])) return 'error.code is not an integer';
  if (typeof e['message'] !== 'string' || e['message'] === '') return 'error.message is not a non-empty string';
  return undefined;
}

/** Asserts a JSON body is one response or a non-empty array of responses. */
function expectJsonRpcBody(json: unknown, context: string): void {
  const items = Array.isArray(json) ? json : [json];
  if (Array.isArray(json)) expect(json.length, `empty batch response for ${context}`).toBeGreaterThan(0);
  for (const item of items) {
    const problem = responseProblem(item);
    expect(problem, `${problem ?? ''} in ${JSON.stringify(item)} for ${context}`).toBeUndefined();
  }
}

/** Asserts the invariants of a classification of `value`. */
function expectWellFormed(c: Classified): void {
  switch (c.kind) {
    case 'request':
      expect(c.msg.jsonrpc).toBe('2.0');
      expect(isId(c.msg.id)).toBe(true);
      expect(typeof c.msg.method === 'string' && c.msg.method !== '').toBe(true);
      expect(c.msg.params === undefined || isRecord(c.msg.params)).toBe(true);
      break;
    case 'notification':
      expect(c.msg.jsonrpc).toBe('2.0');
      expect('id' in c.msg).toBe(false);
      expect(typeof c.msg.method === 'string' && c.msg.method !== '').toBe(true);
      expect(c.msg.params === undefined || isRecord(c.msg.params)).toBe(true);
      break;
    case 'response':
      expect(c.msg.jsonrpc).toBe('2.0');
      expect(isId(c.msg.id)).toBe(true);
      break;
    case 'invalid':
      expect(c.id === null || isId(c.id)).toBe(true);
      expect(typeof c.reason).toBe('string');
      expect(c.reason.length).toBeGreaterThan(0);
      break;
  }
}

/** Any JS value, including exotic ones fast-check can build (null prototypes, Maps, boxed values...). */
const anyValue = fc.anything({
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withSparseArray: true,
  withTypedArray: true,
  withUnicodeString: true,
});

const rpcId = fc.oneof(
  fc.integer(),
  fc.string({ maxLength: 12 }),
  fc.double(),
  fc.constant(null),
  fc.boolean(),
  fc.constant({}),
  fc.constant([1]),
);

/** A progress token as MCP defines it: string or number. */
const validToken = fc.oneof(fc.integer(), fc.string({ maxLength: 8 }));

/** Methods: the known ones, Object.prototype names, notifications, and random strings. */
const method = fc.oneof(
  fc.constantFrom(...KNOWN_METHODS.filter((m) => m !== 'initialize')),
  fc.constantFrom('notifications/cancelled', 'notifications/progress', 'notifications/initialized', 'notifications/roots/list_changed'),
  fc.string({ maxLength: 16 }),
  fc.constant(''),
);

/** Params for a method: random JSON, or plausible-but-wrong shapes of the real params. */
const params = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.record(
    {
      name: fc.oneof(fc.constantFrom('demo-echo', 'demo-add', 'demo-now', 'demo-greeting', 'nope', 'demo-'), fc.string({ maxLength: 8 }), fc.integer()),
      arguments: fc.oneof(
        fc.jsonValue({ maxDepth: 2 }),
        fc.record({ message: fc.oneof(fc.string({ maxLength: 20 }), fc.integer()) }),
        fc.record({ a: fc.oneof(fc.double(), fc.string()), b: fc.integer() }),
      ),
      uri: fc.oneof(fc.constant('demo://readme'), fc.webUrl(), fc.string({ maxLength: 10 })),
      cursor: fc.oneof(fc.string({ maxLength: 10 }), fc.base64String({ maxLength: 12 })),
      level: fc.oneof(fc.constantFrom('debug', 'info', 'error', 'loud'), fc.integer()),
      requestId: rpcId,
      progressToken: rpcId,
      ref: fc.oneof(fc.record({ type: fc.constant('ref/prompt'), name: fc.string({ maxLength: 8 }) }), fc.jsonValue({ maxDepth: 1 })),
      argument: fc.record({ name: fc.string({ maxLength: 5 }), value: fc.string({ maxLength: 5 }) }),
      // valid progress tokens only: invalid ones are covered by their own property below
      _meta: fc.oneof(fc.record({ progressToken: validToken }), fc.jsonValue({ maxDepth: 1 })),
    },
    { requiredKeys: [] },
  ),
);

/** JSON-RPC-shaped messages, each field sometimes missing or of the wrong type. */
const wildMessage = fc.record(
  {
    jsonrpc: fc.oneof(fc.constant('2.0'), fc.constant('2.0'), fc.constant('1.0'), fc.integer()),
    id: rpcId,
    method,
    params,
    result: fc.jsonValue({ maxDepth: 2 }),
    error: fc.jsonValue({ maxDepth: 2 }),
  },
  { requiredKeys: [] },
);

/** Well-formed requests of the served methods with random (often wrong) params. */
const plausibleRequest = fc.record(
  {
    jsonrpc: fc.constant('2.0'),
    id: fc.oneof(fc.integer(), fc.string({ maxLength: 8 })),
    method: fc.constantFrom(...KNOWN_METHODS.filter((m) => m !== 'initialize')),
    params,
  },
  { requiredKeys: ['jsonrpc', 'id', 'method'] },
);

const rpcMessage = fc.oneof({ arbitrary: wildMessage, weight: 1 }, { arbitrary: plausibleRequest, weight: 2 });

describe('classify (property)', () => {
  it('never throws for any value and returns a well-formed classification', () => {
    fc.assert(
      fc.property(anyValue, (v) => {
        expectWellFormed(classify(v));
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws for random JSON values and JSON-RPC-shaped messages', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), rpcMessage), (v) => {
        // classify sees what JSON.parse produces
        const parsed: unknown = JSON.parse(JSON.stringify(v) ?? 'null');
        expectWellFormed(classify(parsed));
      }),
      { numRuns: 1000 },
    );
  });

  it('agrees with the JSON-RPC 2.0 rules for requests', () => {
    fc.assert(
      fc.property(rpcMessage, (v) => {
        const m = JSON.parse(JSON.stringify(v)) as Json;
        const c = classify(m);
        const validMethod = typeof m['method'] === 'string' && m['method'] !== '';
        const validParams = m['params'] === undefined || isRecord(m['params']);
        if (m['jsonrpc'] === '2.0' && validMethod && validParams && isId(m['id'])) expect(c.kind).toBe('request');
        if (m['jsonrpc'] === '2.0' && validMethod && validParams && !('id' in m)) expect(c.kind).toBe('notification');
        if (m['jsonrpc'] !== '2.0') expect(c.kind).toBe('invalid');
        if (c.kind === 'invalid' && isId(m['id'])) expect(c.id).toBe(m['id']);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('/mcp under random input (property)', () => {
  let gw: TestGateway;
  let sid: string;
  let H: Record<string, string>;

  beforeAll(async () => {
    // a small body limit so some random bodies hit 413
    gw = await startTestGateway([demoClient()], { max_body_bytes: 1536 });
    sid = await rawSession(gw.mcpUrl);
    H = { 'mcp-session-id': sid };
  });

  afterAll(async () => {
    await gw.stop();
  });

  async function post(
    body: string | Uint8Array,
    headers: Record<string, string>,
    timeoutMs: number,
  ): Promise<{ status: number; text: string; json: unknown }> {
    const res = await fetch(gw.mcpUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, text, json };
  }

  async function expectPing(): Promise<void> {
    const r = await rawPost(gw.mcpUrl, JSON.stringify({ jsonrpc: '2.0', id: 'ping-after', method: 'ping' }), H);
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ jsonrpc: '2.0', id: 'ping-after', result: {} });
  }

  /**
   * POSTs `body` and checks the answer; returns the parsed JSON body (if any). A request not
   * answered within `timeoutMs` fails the property (instead of the whole test timing out).
   */
  async function postAndCheck(
    body: string | Uint8Array,
    headers: Record<string, string> = H,
    timeoutMs = 5000,
  ): Promise<{ status: number; json: unknown }> {
    const context = typeof body === 'string' ? body.slice(0, 300) : `${body.length} random bytes`;
    let r: Awaited<ReturnType<typeof post>>;
    try {
      r = await post(body, headers, timeoutMs);
    } catch (err) {
      throw new Error(`no answer within ${timeoutMs} ms (${err instanceof Error ? err.name : String(err)}) for ${context}`);
    }
    expect(ALLOWED_STATUSES.has(r.status), `status ${r.status} (${r.text.slice(0, 200)}) for ${context}`).toBe(true);
    if (r.status === 202) expect(r.text).toBe('');
    else if (r.text !== '') {
      expect(r.json, `non-JSON body ${r.text.slice(0, 200)} for ${context}`).toBeDefined();
      expectJsonRpcBody(r.json, context);
    }
    return { status: r.status, json: r.json };
  }

  it('random byte strings', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), async (bytes) => {
        await postAndCheck(bytes);
      }),
      { numRuns: 150 },
    );
    await expectPing();
  });

  it('random JSON values', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue({ maxDepth: 4 }), async (v) => {
        await postAndCheck(JSON.stringify(v) ?? 'null');
      }),
      { numRuns: 150 },
    );
    await expectPing();
  });

  it('random JSON-RPC-shaped messages and batches of them; requests are answered with their own id', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(rpcMessage, fc.array(rpcMessage, { minLength: 1, maxLength: 4 })), async (v) => {
        const text = JSON.stringify(v);
        const sent: unknown = JSON.parse(text);
        const { status, json } = await postAndCheck(text);
        if (!Array.isArray(sent) && isRecord(sent) && status === 200 && isRecord(json)) {
          const c = classify(sent);
          if (c.kind === 'request') expect(json['id']).toEqual(c.msg.id);
        }
        if (Array.isArray(sent) && status === 200 && Array.isArray(json)) {
          const requestIds = sent.map(classify).flatMap((c) => (c.kind === 'request' ? [c.msg.id] : []));
          for (const id of requestIds) expect(json.some((m) => isRecord(m) && m['id'] === id), `no response for id ${JSON.stringify(id)}`).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
    await expectPing();
  });

  it('random headers (content type, accept, session, protocol version, origin) with a valid ping body', async () => {
    const header = (values: string[]) => fc.option(fc.constantFrom(...values), { nil: undefined });
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          'content-type': fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/xml', ''),
          accept: fc.constantFrom('application/json, text/event-stream', 'application/json', 'text/event-stream', 'text/html', '*/*', ''),
          'mcp-session-id': header([sid, 'unknown-session', '']),
          'mcp-protocol-version': header(['2025-06-18', '2025-03-26', '1999-01-01', 'x']),
          origin: header(['http://localhost:1234', 'http://127.0.0.1', 'http://evil.example']),
        }),
        async (hs) => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(hs)) if (v !== undefined) headers[k] = v;
          const r = await rawPost(gw.mcpUrl, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }), headers);
          // 403 is expected here (disallowed Origin), on top of the usual set
          expect(ALLOWED_STATUSES.has(r.status) || r.status === 403, `status ${r.status} for ${JSON.stringify(headers)}`).toBe(true);
          if (r.headers.get('content-type')?.includes('application/json')) expectJsonRpcBody(r.json, JSON.stringify(headers));
        },
      ),
      { numRuns: 150 },
    );
    await expectPing();
  });

  it('any method name that is not an MCP method → -32601 naming it (incl. Object.prototype names)', async () => {
    const unknownMethod = fc
      .oneof(
        fc.constantFrom('toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf', 'isPrototypeOf', 'propertyIsEnumerable', 'toLocaleString', '__defineGetter__'),
        fc.string({ minLength: 1, maxLength: 20 }),
      )
      .filter((m) => !KNOWN_METHODS.includes(m));
    await fc.assert(
      fc.asyncProperty(unknownMethod, async (m) => {
        const { status, json } = await postAndCheck(JSON.stringify({ jsonrpc: '2.0', id: 'm', method: m }));
        expect(status).toBe(200);
        expect(isRecord(json) ? json['error'] : undefined, `method ${JSON.stringify(m)} answered ${JSON.stringify(json)}`).toMatchObject({ code: -32601 });
        const error = isRecord(json) && isRecord(json['error']) ? json['error'] : {};
        expect(String(error['message'])).toContain(m);
      }),
      { numRuns: 100, examples: [['toString'], ['constructor'], ['hasOwnProperty']] },
    );
    await expectPing();
  });

  it('requests with any _meta are answered promptly; a progressToken that is not a string or number → -32602', async () => {
    const meta = fc.oneof(
      fc.record({ progressToken: fc.oneof(validToken, fc.jsonValue({ maxDepth: 1 })) }),
      fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
    );
    const call = fc.constantFrom(
      { method: 'tools/call', params: { name: 'demo-echo', arguments: { message: 'm' } } },
      { method: 'resources/read', params: { uri: 'demo://readme' } },
      { method: 'prompts/get', params: { name: 'demo-greeting', arguments: { name: 'n' } } },
    );
    await fc.assert(
      fc.asyncProperty(call, meta, async (c, m) => {
        const body = JSON.stringify({ jsonrpc: '2.0', id: 'meta', method: c.method, params: { ...c.params, _meta: m } });
        const { status, json } = await postAndCheck(body, H, 2500);
        expect(status).toBe(200);
        const token = isRecord(m) ? m['progressToken'] : undefined;
        if ('progressToken' in m && typeof token !== 'string' && typeof token !== 'number') {
          expect(isRecord(json) ? json['error'] : undefined, `${body} answered ${JSON.stringify(json)}`).toMatchObject({ code: -32602 });
        }
      }),
      // each failing run waits for the timeout: report the first failure without shrinking
      { numRuns: 60, endOnFailure: true, examples: [[{ method: 'tools/call', params: { name: 'demo-echo', arguments: { message: 'm' } } }, { progressToken: true }]] },
    );
    await expectPing();
  });
});
