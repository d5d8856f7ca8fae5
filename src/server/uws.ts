/**
 * Loads uWebSockets.js and refuses to go on unless its native binary loaded. The package used
 * here (`@trufflesuite/uws-js-unofficial`) silently falls back to a
 * partial Node implementation on an unsupported runtime, which fails later under load; the native
 * module is recognised by exports the fallback lacks.
 */
import { createRequire } from 'node:module';
import type * as Uws from 'uWebSockets.js';

const require = createRequire(import.meta.url);

export type UwsModule = typeof Uws;

/** Raised when the native uWS binary is not what got loaded. */
export class UwsNativeError extends Error {
  override readonly name = 'UwsNativeError';
}

/**
 * Returns the native uWebSockets.js module.
 * @throws UwsNativeError naming the Node version and ABI when only the fallback loaded.
 */
export function loadNativeUws(): UwsModule {
  let mod: Record<string, unknown>;
  const originalWarn = console.warn;
  const warnings: string[] = [];
  // the package reports a failed native load with console.warn; capture it for our own message
  console.warn = (...args: unknown[]) => warnings.push(args.map(String).join(' '));
  try {
    mod = require('uWebSockets.js') as Record<string, unknown>;
  } catch (err) {
    throw new UwsNativeError(`uWebSockets.js could not be loaded: ${(err as Error).message}`);
  } finally {
    console.warn = originalWarn;
  }
  const native = typeof mod['getParts'] === 'function' && 'SHARED_COMPRESSOR' in mod && typeof mod['App'] === 'function';
  if (!native) {
    const why = warnings.join(' ').replace(/\s+/g, ' ').trim();
    throw new UwsNativeError(
      `the uWebSockets.js native binary did not load on Node ${process.version} (ABI ${process.versions.modules}, ${process.platform}-${process.arch}); ` +
        `Tributary needs Node 20 (see package.json engines)${why ? `. Loader said: ${why}` : ''}`,
    );
  }
  return mod as unknown as UwsModule;
}
