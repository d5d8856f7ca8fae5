/**
 * The embedded default configuration used when no config file is given: the real
 * `@modelcontextprotocol/server-everything` and `@modelcontextprotocol/server-memory` over stdio,
 * started with this Node binary from node_modules (no npx, no network), plus the in-process
 * `demo` upstream. Binds 127.0.0.1:8080, data in `./data`.
 */
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';

const require = createRequire(import.meta.url);

/**
 * Absolute path of an installed package's bin script.
 * @throws Error if the package is not installed.
 */
export function packageBin(pkg: string, bin?: string): string {
  const manifestPath = require.resolve(`${pkg}/package.json`);
  const manifest = require(manifestPath) as { bin?: string | Record<string, string> };
  const rel = typeof manifest.bin === 'string' ? manifest.bin : bin ? manifest.bin?.[bin] : Object.values(manifest.bin ?? {})[0];
  if (!rel) throw new Error(`package ${pkg} has no bin script`);
  return join(dirname(manifestPath), rel);
}

/** The default config document, decoded like a file (before env overrides and defaults). */
export function defaultConfigFile(): unknown {
  const doc = {
    server: { host: '127.0.0.1', port: 8080 },
    data_dir: './data',
    mcp_clients: [
      {
        name: 'everything',
        connection_type: 'stdio',
        stdio_config: { command: process.execPath, args: [packageBin('@modelcontextprotocol/server-everything'), 'stdio'] },
        tools_to_execute: ['*'],
      },
      {
        name: 'memory',
        connection_type: 'stdio',
        stdio_config: {
          command: process.execPath,
          args: [packageBin('@modelcontextprotocol/server-memory')],
          // keep the knowledge graph under the gateway's data dir, not inside node_modules
          envs: [`MEMORY_FILE_PATH=${resolve(process.env['DATA_DIR'] || './data', 'memory.jsonl')}`],
        },
        tools_to_execute: ['*'],
      },
      { name: 'demo', connection_type: 'inprocess', inprocess_server: 'demo', tools_to_execute: ['*'] },
    ],
  };
  return doc;
}
