/**
 * The MCP client transport of one upstream, by `connection_type`: `stdio` (a subprocess in its own
 * process group, probing MCP 2026-07-28 with `server/discover` before `initialize`), `http`
 * (Streamable HTTP, same probe), `sse` (the 2024-11-05 HTTP+SSE transport) and `inprocess`.
 * Transports: https://modelcontextprotocol.io/specification/2025-06-18/basic/transports
 */
import { getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { FetchLike, Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { GatewayError } from '../base/errors.js';
import type { McpClientConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { EraHttpTransport } from './era-http-transport.js';
import { EraStdioTransport } from './era-stdio-transport.js';
import { createDemoLeanServer } from './inprocess/demo.js';
import { createInProcessServer } from './inprocess/registry.js';

/**
 * Creates (does not start) the transport client config `c` names. Upstream stderr lines go to `log`, never
 * to a client; HTTP and SSE requests use `fetch` (deadline and upstream OAuth applied by the caller).
 * @throws GatewayError INTERNAL_ERROR when a stdio client has no `stdio_config`.
 */
export function createTransport(c: McpClientConfig, log: Logger, fetch: FetchLike): Transport {
  const headers = c.auth_type === 'headers' ? c.headers ?? {} : {};
  switch (c.connection_type) {
    case 'stdio': {
      const sc = c.stdio_config;
      if (!sc) throw new GatewayError('INTERNAL_ERROR', `upstream ${c.name}: stdio_config missing`);
      const env: Record<string, string> = { ...getDefaultEnvironment() };
      for (const entry of sc.envs ?? []) {
        const eq = entry.indexOf('=');
        env[entry.slice(0, eq)] = entry.slice(eq + 1);
      }
      // its own process group: a terminal's Ctrl-C reaches the gateway only (see stdio-transport.ts);
      // probes with server/discover on the pipe: MCP 2026-07-28 statelessly, else initialize as before
      return new EraStdioTransport({
        command: sc.command,
        args: sc.args ?? [],
        env,
        ...(sc.cwd !== undefined ? { cwd: sc.cwd } : {}),
        // upstream stderr goes to the gateway log, never to a client
        onStderrLine: (line) => log.info('upstream stderr', { line }),
      });
    }
    case 'http':
      // probes with server/discover: MCP 2026-07-28 statelessly, else initialize as before
      return new EraHttpTransport(new URL(c.connection_string ?? ''), headers, fetch);
    case 'sse':
      return new SSEClientTransport(new URL(c.connection_string ?? ''), { requestInit: { headers }, fetch });
    case 'inprocess': {
      if (c.inprocess_server === 'demo') return createDemoLeanServer().connect();
      const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
      const server = createInProcessServer(c.inprocess_server ?? 'demo');
      void server.connect(serverSide).catch((err: unknown) => log.error('in-process server failed', { error: err }));
      return clientSide;
    }
  }
}
