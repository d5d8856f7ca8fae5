/**
 * `npm run bench:tool-modes`: what an agent receives in each tool mode (`full`, `search`, `code`),
 * counted in tokens with a real BPE tokenizer (`gpt-tokenizer`, o200k_base, the GPT-4o / GPT-5
 * encoding), and what code mode's sandbox costs.
 *
 * Part 1, tokens at connect time: the JSON of the `tools/list` result an SDK client gets from a
 * real gateway (port 0, auth off) for (a) the default upstreams — server-everything and
 * server-memory over stdio, the in-process demo — and (b) 500 synthetic tools across 20 in-process
 * upstreams (25 tools each, 2–3 sentence descriptions, 3–6 described parameters; a generated,
 * deterministic catalogue).
 *
 * Part 2, a scripted multi-step task (find and chain three tools), per mode and catalogue:
 * default: memory-create_entities → memory-add_observations → memory-read_graph; synthetic:
 * crm-find_customer → billing-create_invoice → mail-send_message. The script does what an agent
 * would: full mode calls the three tools; search mode searches once per step (top 5), describes
 * the three and calls each with call_tool; code mode searches the same way, asks for TypeScript
 * declarations and runs one execute_code.
 * Counted: round trips (MCP requests after initialize), tokens the agent receives (tool list +
 * results), tokens it sends (arguments, code), and the model input over the task: an agent loop
 * sends the tool definitions plus the conversation so far on every turn, so the sum over turns of
 * (tool list + everything exchanged before that turn), with one final turn to answer. This is a
 * model of the loop, not a measurement of an LLM.
 *
 * Part 3, sandbox latency (default catalogue): an `execute_code` of `return 1` end to end over
 * HTTP against a full-mode `tools/call` of demo-echo measured in the same run (the baseline: the
 * same transport and session machinery); and a tool call from code — (T(code with N sequential
 * demo_echo calls) − T(code with none)) / N — against one demo-echo `tools/call` over HTTP. CPU per
 * operation is the process's CPU time (all threads, sandbox workers included) over the loop.
 *
 * Environment: BENCH_QUICK=1 (fewer iterations), BENCH_TOOL_MODES_ITER (runs per latency point,
 * default 200; quick 50), BENCH_TOOL_MODES_CALLS (tool calls per code run in part 3, default 50).
 * Profile: `node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/tool-modes.ts`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { encode } from 'gpt-tokenizer';
import { z } from 'zod';
import { defaultConfigFile } from '../src/config/default.js';
import { resolveConfig } from '../src/config/load.js';
import { startGateway, type Gateway } from '../src/gateway.js';
import { createLogger } from '../src/log/logger.js';
import { registerInProcessServer } from '../src/upstreams/inprocess/registry.js';
import { fmtInt, quantile } from './lib.js';

const QUICK = process.env['BENCH_QUICK'] === '1';
const ITER = Number(process.env['BENCH_TOOL_MODES_ITER'] ?? (QUICK ? 50 : 200));
const CALLS = Number(process.env['BENCH_TOOL_MODES_CALLS'] ?? 50);
const MODES = ['full', 'search', 'code'] as const;
type Mode = (typeof MODES)[number];
type Json = Record<string, unknown>;

const tokens = (value: unknown): number => encode(typeof value === 'string' ? value : JSON.stringify(value)).length;

// ---------- the synthetic catalogue ----------
const DOMAINS = ['crm', 'billing', 'mail', 'tickets', 'calendar', 'files', 'wiki', 'chat', 'hr', 'inventory', 'shipping', 'analytics', 'ads', 'payments', 'auth', 'search', 'maps', 'weather', 'translate', 'ci'];
const VERBS = ['find', 'get', 'list', 'create', 'update', 'delete', 'archive', 'export', 'import', 'merge', 'tag', 'assign', 'approve', 'reject', 'notify', 'schedule', 'summarize', 'validate', 'sync', 'count', 'restore', 'share', 'lock', 'unlock', 'send'];
const NOUNS: Record<string, string> = {
  crm: 'customer', billing: 'invoice', mail: 'message', tickets: 'ticket', calendar: 'event', files: 'document', wiki: 'page', chat: 'thread', hr: 'employee', inventory: 'item',
  shipping: 'shipment', analytics: 'report', ads: 'campaign', payments: 'payment', auth: 'session', search: 'index', maps: 'route', weather: 'forecast', translate: 'glossary', ci: 'pipeline',
};
const PARAMS = ['id', 'name', 'email', 'amount', 'currency', 'due_date', 'status', 'owner', 'tags', 'notes', 'limit', 'cursor', 'priority', 'region'];

function syntheticServer(domain: string): () => McpServer {
  return () => {
    const server = new McpServer({ name: `synthetic-${domain}`, version: '1.0.0' });
    const noun = NOUNS[domain] ?? 'record';
    VERBS.forEach((verb, i) => {
      const shape: Record<string, z.ZodTypeAny> = {};
      const n = 3 + (i % 4);
      for (let k = 0; k < n; k++) {
        const p = PARAMS[(i + k * 3) % PARAMS.length] ?? 'id';
        const base = p === 'amount' || p === 'limit' ? z.number() : p === 'tags' ? z.array(z.string()) : z.string();
        shape[`${noun}_${p}`] = (k < 2 ? base : base.optional()).describe(`The ${p.replace('_', ' ')} of the ${noun} to ${verb}.`);
      }
      server.registerTool(
        `${verb}_${noun}`,
        {
          description: `${verb[0]?.toUpperCase()}${verb.slice(1)} a ${noun} in the ${domain} system. Use this when the user asks to ${verb} ${noun}s; results include the ${noun}'s id and status. Requires the ${domain}:${verb} scope.`,
          inputSchema: shape,
        },
        (args) => ({ content: [{ type: 'text', text: JSON.stringify({ ok: true, tool: `${verb}_${noun}`, id: `${noun}-42`, args }) }] }),
      );
    });
    return server;
  };
}

// ---------- gateways and clients ----------
async function start(clients: unknown[]): Promise<{ gw: Gateway; stop: () => Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tributary-bench-modes-'));
  const config = resolveConfig(
    { server: { host: '127.0.0.1', port: 0 }, data_dir: dataDir, log_level: 'error', mcp_clients: clients, auth: { rate_limits: { burst_per_minute: 1e9, requests_per_hour: 1e9, tool_executions_per_hour: 1e9 } } },
    'bench',
    {},
  );
  const gw = await startGateway(config, { log: createLogger('error') });
  return {
    gw,
    stop: async () => {
      await gw.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function connect(gw: Gateway, mode: Mode): Promise<Client> {
  const client = new Client({ name: `bench-${mode}`, version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`), { requestInit: { headers: { 'x-tributary-tool-mode': mode } } }));
  return client;
}

interface TaskStats {
  roundTrips: number;
  received: number;
  sent: number;
  modelInput: number;
  ok: boolean;
}

/** Runs one exchange and records it: the tokens sent (arguments) and received (the result). */
class Transcript {
  readonly stats: TaskStats = { roundTrips: 0, received: 0, sent: 0, modelInput: 0, ok: true };
  private defs = 0;
  private history = 0;
  constructor(private readonly client: Client) {}

  async list(): Promise<Json[]> {
    const r = await this.client.listTools();
    this.stats.roundTrips++;
    this.defs = tokens(r.tools);
    this.stats.received += this.defs;
    return r.tools as unknown as Json[];
  }

  /** One model turn that decides on a tool call, then the call. */
  async call(name: string, args: Json): Promise<string> {
    const sent = tokens({ name, arguments: args });
    this.stats.modelInput += this.defs + this.history;
    const r = await this.client.callTool({ name, arguments: args });
    this.stats.roundTrips++;
    const text = ((r.content ?? []) as { text?: string }[]).map((c) => c.text ?? '').join('\n');
    if (r.isError === true) this.stats.ok = false;
    const received = tokens(r.content);
    this.stats.sent += sent;
    this.stats.received += received;
    this.history += sent + received;
    return text;
  }

  /** The final model turn that answers the user. */
  finish(): TaskStats {
    this.stats.modelInput += this.defs + this.history;
    return this.stats;
  }
}

interface TaskScript {
  readonly searches: readonly [string, string, string];
  readonly names: readonly [string, string, string];
  readonly args: readonly [Json, Json, Json];
  readonly code: string;
}

async function runTask(gw: Gateway, mode: Mode, s: TaskScript): Promise<TaskStats> {
  const client = await connect(gw, mode);
  const t = new Transcript(client);
  await t.list();
  if (mode === 'full') {
    for (let i = 0; i < 3; i++) await t.call(s.names[i] ?? '', s.args[i] ?? {});
  } else {
    // one search per step, as an agent looks for each tool it needs
    for (let i = 0; i < 3; i++) {
      const query = s.searches[i] ?? '';
      const found = await t.call('search_tools', { query, limit: 5 });
      const name = s.names[i] ?? '';
      if (!found.split('\n').some((l) => l.startsWith(`${name}:`))) throw new Error(`search_tools did not find ${name} for ${JSON.stringify(query)}:\n${found}`);
    }
    await t.call('describe_tools', { names: [...s.names] });
    if (mode === 'search') for (let i = 0; i < 3; i++) await t.call('call_tool', { name: s.names[i], arguments: s.args[i] });
    else await t.call('execute_code', { code: s.code });
  }
  await client.close();
  return t.finish();
}

const DEFAULT_TASK: TaskScript = {
  searches: ['create entities in the knowledge graph', 'add observations to an entity', 'read the whole knowledge graph'],
  names: ['memory-create_entities', 'memory-add_observations', 'memory-read_graph'],
  args: [{ entities: [{ name: 'Ada', entityType: 'person', observations: ['wrote the first program'] }] }, { observations: [{ entityName: 'Ada', contents: ['born 1815'] }] }, {}],
  code: `await tools.memory_create_entities({ entities: [{ name: 'Ada', entityType: 'person', observations: ['wrote the first program'] }] });
await tools.memory_add_observations({ observations: [{ entityName: 'Ada', contents: ['born 1815'] }] });
const g = await tools.memory_read_graph({});
return (g.structuredContent ?? JSON.parse(g.text)).entities.find((e: { name: string }) => e.name === 'Ada');`,
};

const SYNTHETIC_TASK: TaskScript = {
  searches: ['find a customer', 'create an invoice', 'send a message by email'],
  names: ['crm-find_customer', 'billing-create_invoice', 'mail-send_message'],
  args: [{ customer_id: 'c-7', customer_amount: 0 }, { invoice_amount: 120, invoice_status: 'draft' }, { message_limit: 1, message_region: 'eu', message_email: 'ada@example.com' }],
  code: `const c = await tools.crm_find_customer({ customer_id: 'c-7', customer_amount: 0 });
const inv = await tools.billing_create_invoice({ invoice_amount: 120, invoice_status: 'draft' });
const sent = await tools.mail_send_message({ message_limit: 1, message_region: 'eu', message_email: 'ada@example.com' });
return [c.text, inv.text, sent.text].map((t) => JSON.parse(t).id);`,
};

// ---------- latency ----------
interface Timed {
  readonly p50Us: number;
  readonly p99Us: number;
  readonly cpuUsPerOp: number;
}

async function timeLoop(n: number, op: () => Promise<unknown>): Promise<Timed> {
  for (let i = 0; i < Math.min(10, n); i++) await op();
  const samples = new Float64Array(n);
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await op();
    samples[i] = (performance.now() - t0) * 1000;
  }
  const cpu = process.cpuUsage(cpu0);
  samples.sort();
  return { p50Us: quantile(samples, 0.5), p99Us: quantile(samples, 0.99), cpuUsPerOp: (cpu.user + cpu.system) / n };
}

function table(head: string[], rows: (string | number)[][]): void {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => `| ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  console.log(line(head));
  console.log(`|${widths.map((w, i) => (i === 0 ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
  for (const r of cells.slice(1)) console.log(line(r));
}

async function main(): Promise<void> {
  console.log(`bench:tool-modes — tokens: gpt-tokenizer o200k_base; ${QUICK ? 'quick' : 'full'} run; node ${process.version}`);
  const defaults = defaultConfigFile() as { mcp_clients: Json[] };
  const memDir = mkdtempSync(join(tmpdir(), 'tributary-bench-memory-'));
  const clients = defaults.mcp_clients.map((c) =>
    c['name'] === 'memory' ? { ...c, stdio_config: { ...(c['stdio_config'] as Json), envs: [`MEMORY_FILE_PATH=${join(memDir, 'memory.jsonl')}`] } } : c,
  );
  const def = await start(clients);
  for (const d of DOMAINS) registerInProcessServer(`synthetic-${d}`, syntheticServer(d));
  const syn = await start([]);
  // a config file names only built-in in-process servers; the synthetic ones are added through the manager
  for (const d of DOMAINS) await syn.gw.manager.add({ name: d, connection_type: 'inprocess', inprocess_server: `synthetic-${d}` } as unknown as Parameters<Gateway['manager']['add']>[0]);
  try {
    console.log('\n## Tokens at connect time (tools/list as the agent receives it)\n');
    const connectRows: (string | number)[][] = [];
    const fullTokens: Record<string, number> = {};
    for (const [label, g] of [['default upstreams', def.gw], ['500 synthetic tools / 20 upstreams', syn.gw]] as const) {
      for (const mode of MODES) {
        const c = await connect(g, mode);
        const { tools } = await c.listTools();
        await c.close();
        const n = tokens(tools);
        if (mode === 'full') fullTokens[label] = n;
        connectRows.push([label, mode, tools.length, fmtInt(n), mode === 'full' ? '—' : `${(100 * (1 - n / (fullTokens[label] ?? n))).toFixed(1)}% fewer`]);
      }
    }
    table(['catalogue', 'mode', 'tools', 'tokens', 'vs full'], connectRows);

    console.log('\n## Scripted task: find and chain three tools\n');
    const taskRows: (string | number)[][] = [];
    for (const [label, g, script] of [['default upstreams', def.gw, DEFAULT_TASK], ['500 synthetic tools', syn.gw, SYNTHETIC_TASK]] as const) {
      let base = 0;
      for (const mode of MODES) {
        const s = await runTask(g, mode, script);
        if (mode === 'full') base = s.modelInput;
        taskRows.push([label, mode, s.roundTrips, fmtInt(s.received), fmtInt(s.sent), fmtInt(s.modelInput), mode === 'full' ? '—' : `${(100 * (1 - s.modelInput / base)).toFixed(1)}% fewer`, s.ok ? 'yes' : 'NO']);
      }
    }
    table(['catalogue', 'mode', 'round trips', 'tokens received', 'tokens sent', 'model input over the task', 'vs full', 'all calls ok'], taskRows);

    console.log(`\n## Sandbox latency (${ITER} runs per point; ${CALLS} tool calls per code run)\n`);
    const full = await connect(def.gw, 'full');
    const code = await connect(def.gw, 'code');
    const echo = (): Promise<unknown> => full.callTool({ name: 'demo-echo', arguments: { message: 'x' } });
    const exec = (src: string) => (): Promise<unknown> =>
      code.callTool({ name: 'execute_code', arguments: { code: src } }).then((r) => {
        if (r.isError === true) throw new Error(JSON.stringify(r.content));
      });
    const calls = `for (let i = 0; i < ${CALLS}; i++) await tools.demo_echo({ message: 'x' }); return 1;`;
    const baseline = await timeLoop(ITER, echo);
    const empty = await timeLoop(ITER, exec('return 1;'));
    const withCalls = await timeLoop(Math.max(10, Math.round(ITER / 5)), exec(calls));
    const baseline2 = await timeLoop(ITER, echo);
    const perCallUs = (withCalls.p50Us - empty.p50Us) / CALLS;
    const perCallCpu = (withCalls.cpuUsPerOp - empty.cpuUsPerOp) / CALLS;
    table(
      ['operation', 'p50 µs', 'p99 µs', 'CPU µs/op', 'vs baseline'],
      [
        ['baseline: tools/call demo-echo over HTTP (full mode)', fmtInt(baseline.p50Us), fmtInt(baseline.p99Us), fmtInt(baseline.cpuUsPerOp), '1.00×'],
        ['baseline again (A/A control)', fmtInt(baseline2.p50Us), fmtInt(baseline2.p99Us), fmtInt(baseline2.cpuUsPerOp), `${(baseline2.p50Us / baseline.p50Us).toFixed(2)}×`],
        ['execute_code `return 1` over HTTP', fmtInt(empty.p50Us), fmtInt(empty.p99Us), fmtInt(empty.cpuUsPerOp), `${(empty.p50Us / baseline.p50Us).toFixed(2)}×`],
        [`execute_code with ${CALLS} sequential demo_echo calls`, fmtInt(withCalls.p50Us), fmtInt(withCalls.p99Us), fmtInt(withCalls.cpuUsPerOp), `${(withCalls.p50Us / baseline.p50Us).toFixed(2)}×`],
        ['one tool call from code (difference / calls)', fmtInt(perCallUs), '', fmtInt(perCallCpu), `${(perCallUs / baseline.p50Us).toFixed(2)}×`],
      ],
    );
    console.log(`\nadded per execution (p50, execute_code − baseline call): ${fmtInt(empty.p50Us - baseline.p50Us)} µs; per tool call from code: ${fmtInt(perCallUs)} µs wall, ${fmtInt(perCallCpu)} µs CPU`);
    await full.close();
    await code.close();
  } finally {
    await def.stop();
    await syn.stop();
    rmSync(memDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
