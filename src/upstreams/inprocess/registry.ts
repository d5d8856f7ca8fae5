/**
 * In-process SDK servers by name (`connection_type: inprocess`, `inprocess_server: NAME`): the
 * built-in `demo_sdk` (`demo` itself is the lean server, wired directly), plus servers an embedding program registers before it adds a client that
 * names them (the tool-modes benchmark registers synthetic catalogues this way). Each connect
 * gets a fresh server instance from the factory.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { createDemoServer } from './demo.js';

const factories = new Map<string, () => McpServer>([['demo_sdk', createDemoServer]]);

/**
 * Registers `factory` under `name` for in-process clients added after this call (through
 * `UpstreamManager.add`; a config file may still name only the built-in servers).
 * @throws Error when `name` is taken.
 */
export function registerInProcessServer(name: string, factory: () => McpServer): void {
  if (factories.has(name)) throw new Error(`in-process server ${name} is already registered`);
  factories.set(name, factory);
}

/** A new instance of in-process server `name`. @throws Error for an unknown name. */
export function createInProcessServer(name: string): McpServer {
  const f = factories.get(name);
  if (!f) throw new Error(`unknown in-process server ${JSON.stringify(name)} (known: ${[...factories.keys()].join(', ')})`);
  return f();
}
