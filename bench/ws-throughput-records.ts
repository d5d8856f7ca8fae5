/**
 * Stdio upstream of `npm run bench:ws` for the bytes-on-the-wire table: one tool, `records`, that
 * returns a JSON-heavy structured result (bench/ws-throughput-data.ts `records`), so the frame
 * sizes of structured results are measured off the gateway's socket rather than computed.
 *
 * `records { bytes, text?, input? }` → `structuredContent` = records of about `bytes` bytes of JSON,
 * and one text block: `text: "json"` (default) the same JSON serialized (what the MCP spec asks of
 * a tool with structured output, for clients that read only `content`), `"summary"` a short line.
 * `input` (any JSON value) is accepted and counted, for measuring JSON-heavy arguments.
 *
 * Run: `node --import tsx bench/ws-throughput-records.ts` (stdio; only MCP messages on stdout).
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';
import { records } from './ws-throughput-data.js';

const server = new McpServer({ name: 'bench-records', version: '1.0.0' });

server.registerTool(
  'records',
  {
    description: 'Returns about `bytes` bytes of JSON records as structured content.',
    inputSchema: {
      bytes: z.number().int().min(0).max(16 * 1024 * 1024),
      text: z.enum(['json', 'summary']).optional(),
      input: z.unknown().optional(),
    },
  },
  ({ bytes, text = 'json', input }) => {
    const received = input === undefined ? 0 : JSON.stringify(input).length;
    const data = bytes > 0 ? records(bytes) : { records: [] };
    const line = text === 'json' ? JSON.stringify(data) : `${data.records.length} records; ${received} bytes of input received`;
    return { content: [{ type: 'text' as const, text: line }], structuredContent: input === undefined ? data : { ...data, received } };
  },
);

await server.connect(new StdioServerTransport());
