/**
 * ClientRepository on real LevelDB: round trip of full records, creation order kept across
 * updates and restarts, delete, seeded names, durability when put() resolves.
 */
import { describe, expect, it } from 'vitest';
import type { ClientName } from '../src/config/schema.js';
import type { ClientRecord } from '../src/store/clients.js';
import type { Store } from '../src/store/open.js';
import { tempStores } from './helpers/store.js';


const openTemp = tempStores('trib-clients-');
const freshStore = (dataDir?: string): Promise<{ store: Store; dataDir: string }> => openTemp(dataDir === undefined ? {} : { dataDir });

function record(id: string, name: string, at = '2026-02-01T10:00:00.000Z'): ClientRecord {
  return {
    config: {
      client_id: id,
      name: name as ClientName,
      connection_type: 'stdio',
      stdio_config: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-everything'], envs: [] },
      tools_to_execute: ['*'],
      headers: { 'x-api-key': 'k' },
      request_timeout_ms: 30_000 as never,
    },
    tool_pricing: { echo: 0.0005, add: 0, 'long-running': 1.25 },
    vk_configs: [
      { virtual_key_id: 'vk-1', virtual_key_name: 'team a', tools_to_execute: ['echo'] },
      { virtual_key_id: 'vk-2', tools_to_execute: [] },
    ],
    created_at: at,
    updated_at: at,
  };
}

describe('ClientRepository', () => {
  it('round-trips a full record exactly; unknown ids give undefined', async () => {
    const { store } = await freshStore();
    const r = record('c-1', 'everything');
    await store.clients.put(r);
    expect(await store.clients.get('c-1')).toStrictEqual(r);
    expect(await store.clients.get('nope')).toBeUndefined();
  });

  it('lists in creation order; an update keeps its place; order survives a restart', async () => {
    const { store, dataDir } = await freshStore();
    // ids deliberately not in key order, created in the same ms
    for (const [id, name] of [['zz', 'third_by_key'], ['aa', 'first_by_key'], ['mm', 'second_by_key']] as const) {
      await store.clients.put(record(id, name));
    }
    const updated = { ...record('zz', 'renamed'), updated_at: '2026-02-02T00:00:00.000Z' };
    await store.clients.put(updated);
    expect((await store.clients.list()).map((r) => r.config.client_id)).toEqual(['zz', 'aa', 'mm']);
    expect((await store.clients.get('zz'))?.config.name).toBe('renamed');
    await store.close();

    const { store: again } = await freshStore(dataDir);
    await again.clients.put(record('new', 'fourth'));
    expect((await again.clients.list()).map((r) => r.config.client_id)).toEqual(['zz', 'aa', 'mm', 'new']);
  });

  it('concurrent puts of new clients all land, each with its own place', async () => {
    const { store } = await freshStore();
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.clients.put(record(`id-${i}`, `c${i}`))));
    const ids = (await store.clients.list()).map((r) => r.config.client_id);
    expect(new Set(ids).size).toBe(20);
    expect(ids.sort()).toEqual(Array.from({ length: 20 }, (_, i) => `id-${i}`).sort());
  });

  it('delete removes the record, answers whether it existed, and survives a restart', async () => {
    const { store, dataDir } = await freshStore();
    await store.clients.put(record('a', 'a'));
    await store.clients.put(record('b', 'b'));
    expect(await store.clients.delete('a')).toBe(true);
    expect(await store.clients.delete('a')).toBe(false);
    expect(await store.clients.get('a')).toBeUndefined();
    await store.close();
    const { store: again } = await freshStore(dataDir);
    expect((await again.clients.list()).map((r) => r.config.client_id)).toEqual(['b']);
  });

  it('seeded names: [] at first, then exactly what was set, across restarts', async () => {
    const { store, dataDir } = await freshStore();
    expect(await store.clients.getSeeded()).toEqual([]);
    await store.clients.setSeeded(['everything', 'memory']);
    await store.clients.setSeeded(['everything', 'memory', 'demo']);
    expect(await store.clients.getSeeded()).toEqual(['everything', 'memory', 'demo']);
    await store.close();
    const { store: again } = await freshStore(dataDir);
    expect(await again.clients.getSeeded()).toEqual(['everything', 'memory', 'demo']);
  });

  it('put is durable when it resolves: visible to a fresh handle right after close', async () => {
    const { store, dataDir } = await freshStore();
    await store.clients.put(record('d', 'durable'));
    expect(store.writer.counters.ops).toBe(0); // not through the batch writer
    await store.close();
    const { store: again } = await freshStore(dataDir);
    expect(await again.clients.get('d')).toStrictEqual(record('d', 'durable'));
  });

  it('refuses a record without client_id', async () => {
    const { store } = await freshStore();
    await expect(store.clients.put({ ...record('x', 'x'), config: { ...record('x', 'x').config, client_id: '' } })).rejects.toThrow(TypeError);
  });
});
