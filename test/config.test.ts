/**
 * Config decoding (io-ts): defaults, env overrides, and errors that name the bad field by path.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, configPathFrom, loadConfig, resolveConfig } from '../src/config/load.js';

function problems(doc: unknown, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    resolveConfig(doc, 'test.json', env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

describe('config', () => {
  it('fills every default for an empty document', () => {
    const c = resolveConfig({}, 'test');
    expect(c.server).toMatchObject({ host: '127.0.0.1', port: 8080, max_body_bytes: 4 * 1024 * 1024, concurrency: 256, max_queued: 1024 });
    expect(c.data_dir).toBe('./data');
    expect(c.mcp_clients).toEqual([]);
    expect(c.store).toEqual({ batch_window_ms: 0, max_batch: 1000, write_buffer_mib: 32, max_file_mib: 8, compression: true });
  });

  it('takes LevelDB tuning under store, in whole MiB', () => {
    expect(resolveConfig({ store: { write_buffer_mib: 4, max_file_mib: 2 } }, 'test').store).toMatchObject({ write_buffer_mib: 4, max_file_mib: 2 });
    expect(problems({ store: { write_buffer_mib: 0, max_file_mib: 1.5 } })).toEqual([
      'store.write_buffer_mib: expected PositiveInt, got 0',
      'store.max_file_mib: expected PositiveInt, got 1.5',
    ]);
  });

  it('takes LevelDB table compression under store, as a boolean', () => {
    expect(resolveConfig({ store: { compression: false } }, 'test').store.compression).toBe(false);
    expect(problems({ store: { compression: 'no' } })).toEqual(['store.compression: expected boolean, got "no"']);
  });

  it('applies PORT, HOST, DATA_DIR and LOG_LEVEL over the file', () => {
    const c = resolveConfig({ server: { port: 1 }, data_dir: '/a' }, 'test', { PORT: '9999', HOST: '0.0.0.0', DATA_DIR: '/b', LOG_LEVEL: 'warn' });
    expect(c.server.port).toBe(9999);
    expect(c.server.host).toBe('0.0.0.0');
    expect(c.data_dir).toBe('/b');
    expect(c.log_level).toBe('warn');
    expect(problems({}, { PORT: '70000' })).toEqual(['env PORT: expected a port number 0..65535, got "70000"']);
    expect(problems({}, { LOG_LEVEL: 'loud' })[0]).toMatch(/^env LOG_LEVEL/);
  });

  it('names each bad field with its path', () => {
    const p = problems({
      server: { port: -1, concurrency: 0 },
      mcp_clients: [
        { name: 'has-hyphen', connection_type: 'stdio', stdio_config: { command: 'x', envs: ['NOEQUALS'] } },
        { name: 'ok', connection_type: 'carrier-pigeon' },
      ],
    });
    expect(p).toContain('server.port: expected Port, got -1');
    expect(p).toContain('server.concurrency: expected PositiveInt, got 0');
    expect(p).toContain('mcp_clients.0.name: expected ClientName, got "has-hyphen"');
    expect(p).toContain('mcp_clients.0.stdio_config.envs.0: expected EnvEntry, got "NOEQUALS"');
    expect(p.some((l) => l.startsWith('mcp_clients.1.connection_type: expected'))).toBe(true);
  });

  it('checks what each connection type needs, and unique names', () => {
    const p = problems({
      mcp_clients: [
        { name: 'a', connection_type: 'stdio' },
        { name: 'b', connection_type: 'http' },
        { name: 'c', connection_type: 'sse', connection_string: 'ftp://x' },
        { name: 'd', connection_type: 'inprocess', inprocess_server: 'nope' },
        { name: 'e', connection_type: 'http', connection_string: 'http://127.0.0.1:1/mcp', auth_type: 'headers' },
        { name: 'a', connection_type: 'inprocess', inprocess_server: 'demo' },
      ],
    });
    expect(p).toEqual([
      'mcp_clients.0.stdio_config: required for connection_type "stdio"',
      'mcp_clients.1.connection_string: required for connection_type "http"',
      'mcp_clients.2.connection_string: not an http(s) URL: "ftp://x"',
      'mcp_clients.3.inprocess_server: expected one of ["demo","demo_sdk"], got "nope"',
      'mcp_clients.4.headers: required (non-empty) when auth_type is "headers"',
      'mcp_clients.5.name: duplicate client name "a"',
    ]);
  });

  it('rejects unknown top-level shapes without crashing', () => {
    expect(problems(null).length).toBeGreaterThan(0);
    expect(problems([]).length).toBeGreaterThan(0);
    expect(problems({ mcp_clients: 'x' })[0]).toMatch(/^mcp_clients: expected/);
  });

  it('finds the config path in argv or TRIBUTARY_CONFIG, and uses the embedded default otherwise', () => {
    expect(configPathFrom(['--config', 'a.json'], {})).toBe('a.json');
    expect(configPathFrom(['--config=b.json'], {})).toBe('b.json');
    expect(configPathFrom([], { TRIBUTARY_CONFIG: 'c.json' })).toBe('c.json');
    expect(() => configPathFrom(['--config'], {})).toThrow(ConfigError);
    const def = loadConfig([], {});
    expect(def.mcp_clients.map((c) => `${c.name}:${c.connection_type}`)).toEqual(['everything:stdio', 'memory:stdio', 'demo:inprocess']);
    const everything = def.mcp_clients[0];
    expect(everything?.stdio_config?.command).toBe(process.execPath);
    expect(everything?.stdio_config?.args?.[0]).toMatch(/node_modules\/@modelcontextprotocol\/server-everything\//);
  });
});
