/**
 * Sealed `Mcp-Session-Id`s: the session's state travels in the id itself, encrypted and
 * authenticated with AES-256-GCM (node:crypto), so any gateway process holding the key — another
 * worker thread, another cluster node — can rebuild the session from the id alone.
 *
 * Id form: `ts1.<kid>.<base64url(nonce ‖ ciphertext ‖ tag)>` where `kid` names the key (the first
 * 8 bytes of SHA-256 of the key, base64url), the nonce is 96 random bits per id (so ids are never
 * guessable and never repeat), the tag is 128 bits, and the literal `ts1` is the additional
 * authenticated data. The plaintext is compact JSON of {@link SealedSessionState}.
 *
 * Key rotation: the first key seals, every key opens. Put a new key first and keep the old one
 * listed for as long as sessions opened with it may be used (the overlap window); removing a key
 * ends every session it sealed. Keys are raw 32 random bytes — no password-based derivation (that
 * would cost tens of ms per id), so cost per id is one AES-GCM operation (`npm run bench:sealed-session`).
 *
 * Ids are visible ASCII (0x21–0x7E), as MCP requires of session ids:
 * https://modelcontextprotocol.io/specification/2025-06-18/basic/transports#session-management ;
 * AES-GCM: NIST SP 800-38D, https://nodejs.org/api/crypto.html#class-cipher
 */
import { createCipheriv, createDecipheriv, createHash, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import type { ToolMode } from '../../base/principal.js';

const PREFIX = 'ts1';
const AAD = Buffer.from(PREFIX, 'ascii');
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Raw key size, bytes (AES-256). */
export const SESSION_KEY_BYTES = 32;
/**
 * Client capabilities larger than this (bytes of JSON) are kept by their top-level names only (each
 * `{}`): the gateway reads only which capabilities are present, and a session id must fit in a
 * request header.
 */
export const MAX_SEALED_CAPABILITIES_BYTES = 512;

/** What a process needs to serve a session it did not open. */
export interface SealedSessionState {
  /** The negotiated protocol version. */
  readonly protocolVersion: string;
  readonly clientCapabilities: Record<string, unknown>;
  readonly clientInfo: { readonly name: string; readonly version?: string };
  /** The principal id that opened the session (the session is bound to it); absent = no auth. */
  readonly owner: string | undefined;
  readonly toolMode: ToolMode;
  /** When the session was opened, ms since the epoch. */
  readonly createdAt: number;
}

interface Wire {
  v: string;
  c: Record<string, unknown>;
  n: string;
  r?: string;
  o?: string;
  m: ToolMode;
  t: number;
}

/** A configured session key was not base64 of 32 bytes. */
export class SessionKeyError extends Error {
  override readonly name = 'SessionKeyError';
}

interface Key {
  readonly id: string;
  /** The raw key as a `KeyObject`: node:crypto then skips importing the key bytes on every cipher it creates. */
  readonly key: KeyObject;
}

function keyId(key: Buffer): string {
  return createHash('sha256').update(key).digest().subarray(0, 8).toString('base64url');
}

/** Longest id body (base64url) decoded into the sealer's own buffer; a longer one gets a buffer of its own. */
const SCRATCH_BYTES = 2048;
/** Options of every decipher: the tag length is fixed, so a shorter tag never verifies. */
const DECIPHER_OPTIONS = { authTagLength: TAG_BYTES } as const;

export class SessionSealer {
  readonly #sealing: Key;
  readonly #byId: ReadonlyMap<string, Key>;
  /**
   * The bytes of the id being opened ({@link open} is synchronous and the decipher copies what it
   * returns), so an open allocates no buffer for them; the nonce is always its first 12 bytes.
   */
  readonly #scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  readonly #nonce = this.#scratch.subarray(0, NONCE_BYTES);

  /**
   * @param keys raw keys, 32 bytes each; the first seals, all open.
   * @param maxAgeMs ids older than this do not open (ms; `Infinity` = no bound).
   * @throws SessionKeyError when `keys` is empty or a key is not 32 bytes.
   */
  constructor(
    keys: readonly Buffer[],
    readonly maxAgeMs = Infinity,
  ) {
    if (keys.length === 0) throw new SessionKeyError('at least one session key is required');
    const list = keys.map((key, i) => {
      if (key.length !== SESSION_KEY_BYTES) throw new SessionKeyError(`session key ${i + 1} must be ${SESSION_KEY_BYTES} bytes (base64 of 32 random bytes), got ${key.length} bytes`);
      return { id: keyId(key), key: createSecretKey(key) };
    });
    this.#sealing = list[0] as Key;
    this.#byId = new Map(list.map((k) => [k.id, k]));
  }

  /**
   * A sealer over base64 (or base64url) keys, e.g. from configuration.
   * @throws SessionKeyError naming the bad key's position.
   */
  static fromBase64(keys: readonly string[], maxAgeMs = Infinity): SessionSealer {
    return new SessionSealer(
      keys.map((k) => Buffer.from(k.trim(), 'base64')),
      maxAgeMs,
    );
  }

  /** A new random key, base64. */
  static generateKey(): string {
    return randomBytes(SESSION_KEY_BYTES).toString('base64');
  }

  /** Seals `state` into a new session id (a fresh random nonce each time). */
  seal(state: SealedSessionState): string {
    let caps = state.clientCapabilities;
    if (JSON.stringify(caps).length > MAX_SEALED_CAPABILITIES_BYTES) caps = Object.fromEntries(Object.keys(caps).map((k) => [k, {}]));
    const wire: Wire = {
      v: state.protocolVersion,
      c: caps,
      n: state.clientInfo.name,
      ...(state.clientInfo.version !== undefined ? { r: state.clientInfo.version } : {}),
      ...(state.owner !== undefined ? { o: state.owner } : {}),
      m: state.toolMode,
      t: state.createdAt,
    };
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#sealing.key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(AAD);
    const body = Buffer.concat([nonce, cipher.update(JSON.stringify(wire), 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${PREFIX}.${this.#sealing.id}.${body.toString('base64url')}`;
  }

  /**
   * Opens an id made by {@link seal} with any of the keys. Returns `undefined` — never throws — for
   * anything else: another format, an unknown key, an altered or truncated id, or one older than
   * `maxAgeMs` at `now`.
   */
  open(id: string, now = Date.now()): SealedSessionState | undefined {
    if (!id.startsWith(PREFIX)) return undefined;
    const dot = id.indexOf('.', PREFIX.length + 1);
    if (id.charCodeAt(PREFIX.length) !== 46 || dot < 0) return undefined;
    const key = this.#byId.get(id.slice(PREFIX.length + 1, dot));
    if (key === undefined) return undefined;
    // base64url: 4 characters per 3 bytes; the decoder skips characters outside the alphabet
    const text = id.slice(dot + 1);
    let bytes: Buffer;
    let nonce: Buffer;
    let size: number;
    if (text.length <= (SCRATCH_BYTES / 3) * 4) {
      bytes = this.#scratch;
      nonce = this.#nonce;
      size = bytes.write(text, 0, 'base64url');
    } else {
      bytes = Buffer.from(text, 'base64url');
      nonce = bytes.subarray(0, NONCE_BYTES);
      size = bytes.length;
    }
    if (size < NONCE_BYTES + TAG_BYTES + 2) return undefined;
    let wire: Wire;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.key, nonce, DECIPHER_OPTIONS);
      decipher.setAAD(AAD);
      decipher.setAuthTag(bytes.subarray(size - TAG_BYTES, size));
      // GCM's update returns all of the plain text; final returns nothing more, it checks the tag
      // (and throws for an altered or truncated id) before anything is parsed
      const plain = decipher.update(bytes.subarray(NONCE_BYTES, size - TAG_BYTES));
      decipher.final();
      wire = JSON.parse(plain.toString()) as Wire;
    } catch {
      return undefined;
    }
    if (now - wire.t > this.maxAgeMs) return undefined;
    return {
      protocolVersion: wire.v,
      clientCapabilities: wire.c,
      clientInfo: wire.r !== undefined ? { name: wire.n, version: wire.r } : { name: wire.n },
      owner: wire.o,
      toolMode: wire.m,
      createdAt: wire.t,
    };
  }
}
