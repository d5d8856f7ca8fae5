/**
 * `npm start`: loads the configuration (`--config PATH`, `TRIBUTARY_CONFIG`, or the embedded
 * default; env `PORT`, `HOST`, `DATA_DIR`, `LOG_LEVEL`), starts the gateway, and stops it
 * gracefully on SIGINT/SIGTERM or when `npm start`'s process goes away (exit 0); a second signal
 * kills the upstreams and exits 1 at once. Exits 1 with a clear message when uWS' native binary
 * did not load, the config is invalid, or the port cannot be bound (naming the process holding it).
 */
// first: V8 settings that must be in place before the gateway's code runs
import './base/v8-tuning.js';
import { loadNativeUws, UwsNativeError } from './server/uws.js';
import { ConfigError, loadConfig } from './config/load.js';
import { createLogger } from './log/logger.js';
import { startGateway, type Gateway } from './gateway.js';

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
  let gateway: Gateway | undefined;
  let stoppingAt: number | undefined;
  const shutDown = (g: Gateway): void => {
    g.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error('shutdown failed', { error: err });
        process.exit(1);
      },
    );
  };
  const stop = (signal: string): void => {
    if (stoppingAt !== undefined) {
      // npm and other wrappers forward the terminal's SIGINT that this process also received:
      // a repeat within moments is that same Ctrl-C, not a second one
      if (Date.now() - stoppingAt < DUPLICATE_SIGNAL_MS) return;
      log.warn('second signal: stopping upstreams and exiting now', { signal });
      // before start-up finished the upstreams' stdin closes with this process, which ends them
      gateway?.killUpstreams();
      process.exit(1);
    }
    stoppingAt = Date.now();
    log.info('shutting down', { signal });
    // during start-up: stop as soon as the gateway is up (below)
    if (gateway) shutDown(gateway);
  };
  // from the start, so a Ctrl-C while upstreams connect is a graceful stop too
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  watchParent(process.env, () => stop('parent process exited'));
  try {
    gateway = await startGateway(config, { log, uws });
  } catch (err) {
    fail(`cannot start: ${(err as Error).message}`);
  }
  if (stoppingAt !== undefined) shutDown(gateway);
}

/** A signal repeated within this many ms counts as the same one (see `stop`). */
const DUPLICATE_SIGNAL_MS = 300;

/** How often the parent process is checked, ms. */
const PARENT_POLL_MS = 500;

/**
 * When started by `npm start` (npm sets `npm_lifecycle_event`), shuts down once the parent is
 * gone: a supervisor's SIGTERM ends npm and its `sh -c`, which do not pass it on, and the gateway
 * would otherwise go on as an orphan, still holding its port. The parent is gone when this
 * process was re-parented (`process.ppid` changed: to init or a subreaper). Started any other way
 * (`node dist/main.js` under systemd, a container, `nohup`), the parent is not watched.
 */
function watchParent(env: NodeJS.ProcessEnv, onGone: () => void): void {
  if (!env['npm_lifecycle_event']) return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onGone();
  }, PARENT_POLL_MS);
  timer.unref();
}

main().catch((err: unknown) => fail(`unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`));
