/**
 * API keys of model providers at rest: AES-256-GCM (node:crypto) with a 96-bit random nonce per
 * value and the provider's name as additional authenticated data, so a sealed key cannot be moved
 * to another provider's record unnoticed. Sealed form: `v1:<base64url nonce>:<base64url ciphertext‖tag>`.
 *
 * The 32-byte key comes from configuration (`model_providers.encryption_key`, env
 * `TRIBUTARY_PROVIDER_KEY`, base64 of 32 bytes) or, when neither is set, from a key file created
 * once in the data directory with mode 0600.
 *
 * Source of the construction: NIST SP 800-38D (GCM), https://nodejs.org/api/crypto.html#class-cipher
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

/** The key could not be read, has the wrong size, or a sealed value does not open with it. */
export class SecretBoxError extends Error {
  override readonly name = 'SecretBoxError';
}

export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  /**
   * A box over a base64 (or base64url) 32-byte key.
   * @throws SecretBoxError when the key does not decode to 32 bytes.
   */
  static fromBase64(text: string): SecretBox {
    const key = Buffer.from(text.trim(), 'base64');
    if (key.length !== KEY_BYTES) throw new SecretBoxError(`provider encryption key must be base64 of ${KEY_BYTES} bytes, got ${key.length} bytes`);
    return new SecretBox(key);
  }

  /**
   * The key from `file`, created with 32 random bytes (mode 0600) when it does not exist.
   * @throws SecretBoxError when the file exists but does not hold a valid key.
   */
  static fromKeyFile(dataDir: string, name = 'provider-secret.key'): SecretBox {
    const path = join(dataDir, name);
    if (!existsSync(path)) writeFileSync(path, randomBytes(KEY_BYTES).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    return SecretBox.fromBase64(readFileSync(path, 'utf8'));
  }

  /** Seals `plaintext`, bound to `aad` (the provider name). */
  seal(plaintext: string, aad: string): string {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `v1:${nonce.toString('base64url')}:${body.toString('base64url')}`;
  }

  /**
   * Opens a value sealed by {@link seal} with the same `aad`.
   * @throws SecretBoxError when the format is wrong, the key differs or the value was altered.
   */
  open(sealed: string, aad: string): string {
    const parts = sealed.split(':');
    if (parts.length !== 3 || parts[0] !== 'v1') throw new SecretBoxError('sealed value has an unknown format');
    const nonce = Buffer.from(parts[1] ?? '', 'base64url');
    const body = Buffer.from(parts[2] ?? '', 'base64url');
    if (nonce.length !== NONCE_BYTES || body.length < TAG_BYTES) throw new SecretBoxError('sealed value is truncated');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, nonce, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(aad, 'utf8'));
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      throw new SecretBoxError('sealed value does not open with this key (wrong key, or altered)');
    }
  }
}
