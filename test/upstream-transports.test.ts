/**
 * Upstream connection types against real servers: server-everything in its Streamable HTTP and
 * SSE modes (child processes on loopback), an SDK Streamable HTTP server in this process that
 * records request headers (auth_type "headers"), stdio envs, tools_to_execute, name shortening,
 * and an upstream that fails to start.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { packageBin } from '../src/config/default.js';
import { createDemoServer } from '../src/upstreams/inprocess/demo.js';
import { connectClient, demoClient, everythingClient, startTestGateway, type TestGateway } from './helpers/gateway.js';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts server-everything in `mode` on a free port and waits until it listens. */
async function startEverything(mode: 'streamableHttp' | 'sse'): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const child = spawn(process.execPath, [packageBin('@modelcontextprotocol/server-everything'), mode], {
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server-everything ${mode} did not start`)), 20_000);
    let out = '';
    child.stderr?.on('data', (d: Buffer) => {
      out += d.toString();
      if (/listening|running/i.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`server-everything ${mode} exited with ${String(code)}: ${out}`)));
  });
  return { child, port };
}

function text(result: unknown): string {
  const first = CallToolResultSchema.parse(result).content[0];
  return first?.type === 'text' ? first.text : '';
}

describe('remote upstreams: server-everything over Streamable HTTP and SSE', () => {
  let http: { child: ChildProcess; port: number };
  let sse: { child: ChildProcess; port: number };
  let gw: TestGateway;

  beforeAll(async () => {
    [http, sse] = await Promise.all([startEverything('streamableHttp'), startEverything('sse')]);
    gw = await startTestGateway([
      { name: 'ev_http', connection_type: 'http', connection_string: `http://127.0.0.1:${http.port}/mcp` },
      { name: 'ev_sse', connection_type: 'sse', connection_string: `http://127.0.0.1:${sse.port}/sse` },
    ]);
  });

  afterAll(async () => {
    await gw?.stop();
    http?.child.kill();
    sse?.child.kill();
  });

  it('connects both and routes calls to each', async () => {
    expect(gw.manager.get('ev_http')?.state).toBe('connected');
    expect(gw.manager.get('ev_sse')?.state).toBe('connected');
    const client = await connectClient(gw);
    try {
      expect(text(await client.callTool({ name: 'ev_http-echo', arguments: { message: 'over http' } }))).toBe('Echo: over http');
      expect(text(await client.callTool({ name: 'ev_sse-echo', arguments: { message: 'over sse' } }))).toBe('Echo: over sse');
    } finally {
      await client.close();
    }
  });
});

describe('auth_type headers and tools_to_execute', () => {
  let server: Server;
  const seen: IncomingHttpHeaders[] = [];
  let gw: TestGateway;

  beforeAll(async () => {
    // a real SDK Streamable HTTP server (stateless: one server per request) recording headers
    server = createServer((req, res) => {
      seen.push(req.headers);
      const transport = new StreamableHTTPServerTransport({ enableJsonResponse: true });
      const mcp = createDemoServer();
      res.on('close', () => {
        void transport.close();
        void mcp.close();
      });
      void mcp.connect(transport).then(() => transport.handleRequest(req, res));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    gw = await startTestGateway([
      {
        name: 'hdr',
        connection_type: 'http',
        connection_string: `http://127.0.0.1:${port}/mcp`,
        auth_type: 'headers',
        headers: { 'X-Api-Key': 'upstream-secret' },
        tools_to_execute: ['echo'],
      },
    ]);
  });

  afterAll(async () => {
    await gw?.stop();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('sends the configured headers on every upstream request', async () => {
    const client = await connectClient(gw);
    try {
      await client.callTool({ name: 'hdr-echo', arguments: { message: 'x' } });
    } finally {
      await client.close();
    }
    expect(seen.length).toBeGreaterThanOrEqual(3);
    expect(seen.every((h) => h['x-api-key'] === 'upstream-secret')).toBe(true);
  });

  it('exposes only the tools in tools_to_execute', async () => {
    const client = await connectClient(gw);
    try {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toEqual(['hdr-echo']);
      await expect(client.callTool({ name: 'hdr-add', arguments: { a: 1, b: 2 } })).rejects.toThrow(/Unknown tool: hdr-add/);
    } finally {
      await client.close();
    }
  });
});

describe('stdio options, naming and failures', () => {
  let gw: TestGateway;
  const longName = 'a_very_long_client_name_that_pushes_tool_names_past_the_limit';

  beforeAll(async () => {
    gw = await startTestGateway([
      { ...everythingClient(), stdio_config: { ...(everythingClient()['stdio_config'] as object), envs: ['TRIBUTARY_TEST_VAR=from-config'] } },
      demoClient(longName),
      demoClient('bare', { tool_prefix: '' }),
      { name: 'broken', connection_type: 'stdio', stdio_config: { command: process.execPath, args: ['-e', 'process.exit(3)'] }, connect_timeout_ms: 5000 },
    ]);
  });

  afterAll(async () => {
    await gw?.stop();
  });

  it('passes envs KEY=VALUE to a stdio upstream', async () => {
    const client = await connectClient(gw);
    try {
      const result = await client.callTool({ name: 'everything-get-env', arguments: {} });
      expect(JSON.stringify(result)).toContain('from-config');
    } finally {
      await client.close();
    }
  });

  it('shortens names over 64 characters deterministically, and they still route', async () => {
    const client = await connectClient(gw);
    try {
      const { tools } = await client.listTools();
      const long = tools.filter((t) => t.name.startsWith(longName.slice(0, 40)));
      expect(long.length).toBe(4);
      for (const t of long) expect(t.name.length).toBeLessThanOrEqual(64);
      const echo = long.find((t) => t.description?.startsWith('Echoes'));
      expect(echo).toBeDefined();
      expect(text(await client.callTool({ name: echo?.name ?? '', arguments: { message: 'long' } }))).toBe('Echo: long');
      // tool_prefix "" exposes names as the upstream has them
      expect(tools.map((t) => t.name)).toContain('echo');
    } finally {
      await client.close();
    }
  });

  it('keeps serving when an upstream fails to start, and reports it', async () => {
    const broken = gw.manager.get('broken');
    expect(broken?.state).toBe('error');
    expect(broken?.lastError).toBeTruthy();
    const health = await fetch(`${gw.url}/health`);
    expect(health.status).toBe(200);
    const body = (await health.json()) as { status: string; components: { upstreams: Record<string, string> } };
    expect(body.status).toBe('degraded');
    expect(body.components.upstreams['broken']).toBe('error');
    expect(body.components.upstreams['everything']).toBe('connected');
    expect(gw.logs.some((l) => l.includes('upstream failed to connect') && l.includes('broken'))).toBe(true);
  });

  it('answers calls to a disconnected upstream with an error naming it', async () => {
    const client = await connectClient(gw);
    try {
      await gw.manager.get('bare')?.close('test');
      await expect(client.callTool({ name: 'echo', arguments: { message: 'x' } })).rejects.toThrow(/Upstream "bare" is not connected/);
      const health = (await (await fetch(`${gw.url}/health`)).json()) as { components: { upstreams: Record<string, string> } };
      expect(health.components.upstreams['bare']).toBe('disconnected');
    } finally {
      await client.close();
    }
  });

  it('logs upstream stderr to the gateway log, never to a client', () => {
    expect(gw.logs.some((l) => l.includes('"upstream stderr"') && l.includes('"upstream":"everything"'))).toBe(true);
  });
});
