/**
 * `npm start`: loads the configuration (`--config PATH`, `TRIBUTARY_CONFIG`, or the embedded
 * default; env `PORT`, `HOST`, `DATA_DIR`, `LOG_LEVEL`), starts the gateway, and stops it
 * gracefully on SIGINT/SIGTERM (exit 0). Exits 1 with a clear message when uWS' native binary did
 * not load, the config is invalid, or the port cannot be bound.
 */
import { loadNativeUws, UwsNativeError } from './server/uws.js';
import { ConfigError, loadConfig } from './config/load.js';
import { createLogger } from './log/logger.js';
import { startGateway } from './gateway.js';

function fail(message: string): never {
  process.stderr.write(`tributary: ${message}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  let uws;
  try {
    uws = loadNativeUws();
  } catch (err) {
    if (err instanceof UwsNativeError) fail(`refusing to start: ${err.message}`);
    throw err;
  }
  let config;
  try {
    config = loadConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  const log = createLogger(config.log_level);
  let gateway;
  try {
    gateway = await startGateway(config, { log, uws });
  } catch (err) {
    fail(`cannot start: ${(err as Error).message}`);
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      log.warn('second signal: exiting now', { signal });
      process.exit(1);
    }
    stopping = true;
    log.info('shutting down', { signal });
    gateway.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error('shutdown failed', { error: err });
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => fail(`unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`));
