/**
 * Multi round-trip requests (`input_required`, MCP 2026-07-28) issued by a 2026-07-28 upstream —
 * the SDK v2 server fixture test/fixtures/mrtr-server.ts over real HTTP — through the gateway:
 * passed through to a 2026-07-28 client (SDK v2 client, automatic fulfilment), and translated into
 * the server→client requests of a session-based client's session (SDK v1 client, 2025-11-25) with
 * the upstream retried on its behalf (https://modelcontextprotocol.io/specification/2026-07-28/basic/patterns/mrtr).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema, type ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';
import { demoClient, rawPost, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { startMrtrServer } from './fixtures/mrtr-server.js';
import { sessionEraParams, withCallerCapabilities } from '../src/upstreams/era-http-transport.js';
import { answerForSession } from '../src/handlers/mcp/modern-input.js';

const V = '2026-07-28';
type Rpc = { id: unknown; result?: Record<string, unknown>; error?: { code: number; message: string; data?: Record<string, unknown> } };

let mrtr: { url: string; close: () => Promise<void> };
let gw: TestGateway;

beforeAll(async () => {
  mrtr = await startMrtrServer();
  gw = await startTestGateway([{ name: 'm', connection_type: 'http', connection_string: mrtr.url, tool_prefix: '' }, demoClient()]);
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await mrtr?.close();
});

function text(r: object): string {
  return JSON.stringify((r as { content?: unknown }).content);
}

/** An SDK v1 (2025-11-25, session) client whose handlers answer like a user would; `asked` records each request. */
async function legacyClient(capabilities: ClientCapabilities, asked: string[]): Promise<Client> {
  const client = new Client({ name: 'legacy', version: '1.0.0' }, { capabilities });
  if (capabilities.elicitation) {
    client.setRequestHandler(ElicitRequestSchema, (req) => {
      asked.push(`elicit:${req.params.message}`);
      const props = Object.keys((req.params as { requestedSchema?: { properties?: object } }).requestedSchema?.properties ?? {});
      return { action: 'accept', content: Object.fromEntries(props.map((p) => [p, p === 'ok' ? true : p === 'color' ? 'blue' : 'Alice'])) };
    });
  }
  if (capabilities.sampling) {
    client.setRequestHandler(CreateMessageRequestSchema, () => {
      asked.push('sample');
      return { role: 'assistant', content: { type: 'text', text: 'Paris' }, model: 'test-model', stopReason: 'endTurn' };
    });
  }
  if (capabilities.roots) {
    client.setRequestHandler(ListRootsRequestSchema, () => {
      asked.push('roots');
      return { roots: [{ uri: 'file:///work', name: 'work' }] };
    });
  }
  await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl));
  return client;
}

describe('a session-based client and a 2026-07-28 upstream that answers input_required', () => {
  it('elicitation, sampling and roots are asked on the session and the upstream is retried with the answers', async () => {
    const asked: string[] = [];
    const client = await legacyClient({ elicitation: {}, sampling: {}, roots: {} }, asked);
    try {
      expect(text(await client.callTool({ name: 'test_input_required_result_elicitation', arguments: {} }))).toContain('Hello, Alice!');
      expect(text(await client.callTool({ name: 'test_input_required_result_sampling', arguments: {} }))).toContain('The model answered: Paris');
      expect(text(await client.callTool({ name: 'test_input_required_result_list_roots', arguments: {} }))).toContain('file:///work');
      expect(asked).toEqual(['elicit:What is your name?', 'sample', 'roots']);
    } finally {
      await client.close();
    }
  });

  it('the upstream requestState is echoed: several inputs in one round, and two rounds with a changing state', async () => {
    const asked: string[] = [];
    const client = await legacyClient({ elicitation: {}, sampling: {}, roots: {} }, asked);
    try {
      expect(text(await client.callTool({ name: 'test_input_required_result_request_state', arguments: {} }))).toContain('state-ok');
      expect(text(await client.callTool({ name: 'test_input_required_result_multiple_inputs', arguments: {} }))).toContain('Paris Alice; 1 root(s)');
      asked.length = 0;
      expect(text(await client.callTool({ name: 'test_input_required_result_multi_round', arguments: {} }))).toContain('Alice likes blue');
      expect(asked).toEqual(['elicit:Step 1: What is your name?', 'elicit:Step 2: What is your favorite color?']);
      const prompt = await client.getPrompt({ name: 'test_input_required_result_prompt' });
      expect(JSON.stringify(prompt.messages)).toContain('Use this context: Alice');
    } finally {
      await client.close();
    }
  });

  it("the upstream sees the session's declared capabilities, and a needed one the client lacks is -32021", async () => {
    const asked: string[] = [];
    const client = await legacyClient({ sampling: {} }, asked);
    try {
      // the fixture asks only for the kinds the request envelope declares
      expect(text(await client.callTool({ name: 'test_input_required_result_capabilities', arguments: {} }))).toContain('declared: sampling');
      expect(asked).toEqual(['sample']);
      await expect(client.callTool({ name: 'test_input_required_result_elicitation', arguments: {} })).rejects.toMatchObject({ code: -32021 });
    } finally {
      await client.close();
    }
  });

  it('a client that declines ends the round with its answer (the upstream decides)', async () => {
    const client = new Client({ name: 'decliner', version: '1.0.0' }, { capabilities: { elicitation: {} } });
    let rounds = 0;
    client.setRequestHandler(ElicitRequestSchema, () => {
      rounds++;
      return { action: 'decline' };
    });
    await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl));
    try {
      // the fixture asks again after a decline; the gateway gives up after its round limit
      await expect(client.callTool({ name: 'test_input_required_result_elicitation', arguments: {} })).rejects.toMatchObject({ code: -32603 });
      expect(rounds).toBe(8);
    } finally {
      await client.close();
    }
  });
});

describe('a 2026-07-28 client and a 2026-07-28 upstream that answers input_required', () => {
  it('the SDK v2 client fulfils the input requests itself; the gateway passes results and retries through', async () => {
    const client = new ModernClient({ name: 'modern', version: '1.0.0' }, { versionNegotiation: { mode: { pin: V } }, capabilities: { elicitation: {} } });
    client.setRequestHandler('elicitation/create', () => ({ action: 'accept', content: { name: 'Bob', color: 'green' } }));
    const sessionsBefore = gw.sessions.size;
    await client.connect(new ModernTransport(gw.mcpUrl));
    try {
      expect(text(await client.callTool({ name: 'test_input_required_result_elicitation', arguments: {} }))).toContain('Hello, Bob!');
      expect(text(await client.callTool({ name: 'test_input_required_result_multi_round', arguments: {} }))).toContain('Bob likes green');
      // no session was opened for it (the session-based clients above may still be listed)
      expect(gw.sessions.size).toBe(sessionsBefore);
    } finally {
      await client.close();
    }
  });

  it('a tampered upstream requestState is refused by the upstream with -32602', async () => {
    const meta = {
      'io.modelcontextprotocol/protocolVersion': V,
      'io.modelcontextprotocol/clientCapabilities': { elicitation: {} },
      'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
    };
    const post = (id: number, extra: Record<string, unknown>): ReturnType<typeof rawPost> =>
      rawPost(gw.mcpUrl, JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'test_input_required_result_tampered_state', arguments: {}, ...extra, _meta: meta } }), {
        'mcp-protocol-version': V,
        'mcp-method': 'tools/call',
        'mcp-name': 'test_input_required_result_tampered_state',
      });
    const first = (await post(1, {})).json as Rpc;
    expect(first.result?.['resultType']).toBe('input_required');
    const state = first.result?.['requestState'] as string;
    const answer = { confirm: { action: 'accept', content: { ok: true } } };
    const bad = (await post(2, { requestState: `${state}x`, inputResponses: answer })).json as Rpc;
    expect(bad.error?.code).toBe(-32602);
    const good = (await post(3, { requestState: state, inputResponses: answer })).json as Rpc;
    expect(good.result?.['resultType']).toBe('complete');
  });
});

describe('a 2026-07-28 upstream over stdio', () => {
  it('is found by the server/discover probe on the pipe and spoken to statelessly; a session-based one next to it still initializes', async () => {
    const up = await startTestGateway([
      { name: 's', connection_type: 'stdio', stdio_config: { command: process.execPath, args: ['--import', 'tsx', 'test/fixtures/mrtr-server.ts', '--stdio'] }, tool_prefix: '' },
      { name: 'fx', connection_type: 'stdio', stdio_config: { command: process.execPath, args: ['--import', 'tsx', 'test/fixtures/conformance-server.ts'] } },
    ]);
    try {
      const meta = {
        'io.modelcontextprotocol/protocolVersion': V,
        'io.modelcontextprotocol/clientCapabilities': { elicitation: {} },
        'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
      };
      const call = async (id: number, name: string, extra: Record<string, unknown> = {}): Promise<Rpc> =>
        (
          await rawPost(up.mcpUrl, JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {}, ...extra, _meta: meta } }), {
            'mcp-protocol-version': V,
            'mcp-method': 'tools/call',
            'mcp-name': name,
          })
        ).json as Rpc;
      // the upstream's own sealed state (the SDK codec's "v1." form), not one the gateway parked
      const first = await call(1, 'test_input_required_result_request_state');
      expect(first.result?.['resultType']).toBe('input_required');
      expect(String(first.result?.['requestState'])).toMatch(/^v1\./);
      const done = await call(2, 'test_input_required_result_request_state', { requestState: first.result?.['requestState'], inputResponses: { confirm: { action: 'accept', content: { ok: true } } } });
      expect(JSON.stringify(done.result?.['content'])).toContain('state-ok');
      // the session-based fixture answers through the gateway as before
      const legacy = await call(3, 'fx-test_simple_text');
      expect(legacy.result?.['resultType']).toBe('complete');
      // and a session-based client reaches the stdio modern upstream through the translation
      const asked: string[] = [];
      const client = new Client({ name: 'legacy', version: '1.0.0' }, { capabilities: { elicitation: {} } });
      client.setRequestHandler(ElicitRequestSchema, (req) => {
        asked.push(req.params.message);
        return { action: 'accept', content: { name: 'Eve' } };
      });
      await client.connect(new StreamableHTTPClientTransport(up.mcpUrl));
      try {
        expect(text(await client.callTool({ name: 'test_input_required_result_elicitation', arguments: {} }))).toContain('Hello, Eve!');
        expect(asked).toEqual(['What is your name?']);
      } finally {
        await client.close();
      }
    } finally {
      await up.stop();
    }
  }, 60_000);
});

describe('Mcp-Param-* headers towards a 2026-07-28 upstream', () => {
  it("are sent for a tool's x-mcp-header arguments (the upstream, another gateway, refuses a call without them)", async () => {
    const inner = await startTestGateway([{ name: 'fx', connection_type: 'stdio', stdio_config: { command: process.execPath, args: ['--import', 'tsx', 'test/fixtures/conformance-server.ts'] } }]);
    const outer = await startTestGateway([{ name: 'up', connection_type: 'http', connection_string: inner.mcpUrl.href, tool_prefix: '' }]);
    const client = new Client({ name: 'legacy', version: '1.0.0' });
    try {
      await client.connect(new StreamableHTTPClientTransport(outer.mcpUrl));
      for (const region of ['eu-west', 'Zürich ☃']) {
        const r = await client.callTool({ name: 'fx-test_custom_header', arguments: { region } });
        expect(r.isError ?? false).toBe(false);
        expect(text(r)).toContain(`region: ${region}`);
      }
      // without the header the inner gateway answers 400 -32020: the outer one really sent it
      const bare = await rawPost(
        inner.mcpUrl,
        JSON.stringify({
          jsonrpc: '2.0',
          id: 9,
          method: 'tools/call',
          params: {
            name: 'fx-test_custom_header',
            arguments: { region: 'eu' },
            _meta: { 'io.modelcontextprotocol/protocolVersion': V, 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' } },
          },
        }),
        { 'mcp-protocol-version': V, 'mcp-method': 'tools/call', 'mcp-name': 'fx-test_custom_header' },
      );
      expect((bare.json as Rpc).error?.code).toBe(-32020);
    } finally {
      await client.close();
      await outer.stop();
      await inner.stop();
    }
  }, 60_000);
});

describe('a retry whose requestState no one is waiting for', () => {
  const meta = {
    'io.modelcontextprotocol/protocolVersion': V,
    'io.modelcontextprotocol/clientCapabilities': { elicitation: {} },
    'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
  };
  const retry = async (requestState: string): Promise<Rpc> =>
    (
      await rawPost(gw.mcpUrl, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'demo-echo', arguments: { message: 'x' }, requestState, inputResponses: {}, _meta: meta } }), {
        'mcp-protocol-version': V,
        'mcp-method': 'tools/call',
        'mcp-name': 'demo-echo',
      })
    ).json as Rpc;

  it('a gateway state that expired, or that this process never parked, is -32602 saying which', async () => {
    const expired = await retry(`tg1.AAAA.${(Date.now() - 3_600_000).toString(36)}`);
    expect(expired.error?.code).toBe(-32602);
    expect(expired.error?.data).toMatchObject({ reason: 'expired' });
    const elsewhere = await retry(`tg1.AAAA.${Date.now().toString(36)}`);
    expect(elsewhere.error?.data).toMatchObject({ reason: 'unknown' });
    expect(elsewhere.error?.message).toContain('another gateway process');
  });

  it('any other state routed to a session-based upstream is -32602, not a fresh run of the tool', async () => {
    const r = await retry('some-upstream-state');
    expect(r.error?.code).toBe(-32602);
    expect(r.error?.data).toMatchObject({ reason: 'unknown', upstream: 'demo' });
  });
});

describe('params towards upstreams of either era', () => {
  it('a session-based upstream never gets the 2026-07-28 fields; other _meta keys stay', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.dictionary(fc.string(), fc.jsonValue()), (rest, metaRest) => {
        const params = {
          ...rest,
          inputResponses: { a: {} },
          requestState: 's',
          _meta: { ...metaRest, 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/related-task': { taskId: 't' } },
        };
        const out = sessionEraParams(params) as Record<string, unknown>;
        expect(out['inputResponses']).toBeUndefined();
        expect(out['requestState']).toBeUndefined();
        const m = out['_meta'] as Record<string, unknown>;
        expect(m['io.modelcontextprotocol/clientCapabilities']).toBeUndefined();
        expect(m['io.modelcontextprotocol/related-task']).toEqual({ taskId: 't' });
      }),
    );
    const plain = { name: 'x', arguments: {}, _meta: { progressToken: 1 } };
    expect(sessionEraParams(plain)).toBe(plain);
  });

  it("the caller's capabilities go in _meta unless the params already name them", () => {
    const p = { name: 'x', _meta: { progressToken: 1 } };
    expect(withCallerCapabilities(p, { sampling: {} })).toEqual({ name: 'x', _meta: { progressToken: 1, 'io.modelcontextprotocol/clientCapabilities': { sampling: {} } } });
    const named = { name: 'x', _meta: { 'io.modelcontextprotocol/clientCapabilities': { roots: {} } } };
    expect(withCallerCapabilities(named, { sampling: {} })).toBe(named);
    expect(withCallerCapabilities(p, undefined)).toBe(p);
  });

  it('an input request of an unknown method ends the call with a clear error', async () => {
    const first = { resultType: 'input_required', inputRequests: { k: { method: 'tools/call', params: {} } } };
    await expect(answerForSession(first, { elicitation: {} }, () => Promise.resolve({}), () => Promise.resolve({}))).rejects.toMatchObject({ code: 'INPUT_REQUIRED_UNRESOLVED' });
  });
});
