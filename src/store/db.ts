/**
 * The LevelDB handle types shared by the store modules: one root database (string keys,
 * `Uint8Array` values) and one sublevel per entity, each with the msgpackr value encoding.
 */
import type { AbstractSublevel } from 'abstract-level';
import type { Level } from 'level';
import { msgpackCodec } from './codec.js';

/** The root classic-level database at `<dataDir>/db`. Values are raw bytes; sublevels encode. */
export type RootDb = Level<string, Uint8Array>;

/** One entity's sublevel: string keys, values of type `V` encoded with msgpackr. */
export type Sublevel<V> = AbstractSublevel<RootDb, string | Buffer | Uint8Array, string, V>;

/** Sublevel names: lower-case ASCII letters, digits and `_`, starting with a letter. */
export const SUBLEVEL_NAME = /^[a-z][a-z0-9_]{0,63}$/;

/**
 * Creates the sublevel `name` of `db` with the msgpackr value encoding. Throws `RangeError` for a
 * name outside {@link SUBLEVEL_NAME}. Two calls with one name address the same keys.
 */
export function openSublevel<V>(db: RootDb, name: string): Sublevel<V> {
  if (!SUBLEVEL_NAME.test(name)) throw new RangeError(`store: bad sublevel name ${JSON.stringify(name)}`);
  return db.sublevel<string, V>(name, { keyEncoding: 'utf8', valueEncoding: msgpackCodec<V>() });
}
