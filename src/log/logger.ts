/**
 * Structured logging on pino (https://getpino.io): one JSON object per line on stderr (stdout
 * stays free for tools that pipe the gateway), `{"level","time","msg",...fields}` with the level as
 * its name and the time as ISO-8601. Levels follow debug < info < warn < error; `silent` drops all.
 *
 * - Error values in fields are reduced to `{name, message}`, so stack traces with paths or secrets
 *   do not reach shipped logs.
 * - Secrets are redacted by path with pino's `redact` ({@link REDACTED_PATHS}): fields named like
 *   credentials, and credential headers inside a `headers` field. Explicit paths only: pino's
 *   wildcard paths doubled the cost of every line. The code never logs a secret on purpose (the
 *   tests grep every log line for every key used); this is the second line of defence.
 * - Lines written inside an OpenTelemetry span carry its `trace_id` and `span_id` (pino `mixin`,
 *   fed by {@link setLogContext}; the tracing module installs it only when tracing is on).
 * - The level of the root logger and every child can be changed while running
 *   ({@link Logger.setLevel}; the management API's `PUT /api/log-level`).
 */
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

export type LogLevelName = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export const LOG_LEVELS: readonly LogLevelName[] = ['debug', 'info', 'warn', 'error', 'silent'];

export type LogFields = Record<string, unknown>;

/** A logger bound to a component name; `child` adds fixed fields. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
  isLevelEnabled(level: LogLevelName): boolean;
  /** The level now in force (shared by the root logger and all its children). */
  level(): LogLevelName;
  /** Changes the level of this logger's whole family (the root and every child), at once. */
  setLevel(level: LogLevelName): void;
}

/** Where log lines go (without the trailing newline); replaced in tests to capture output. */
export type LogSink = (line: string) => void;

/** Field paths whose values never reach a log line (pino `redact`, censored as `[redacted]`). */
export const REDACTED_PATHS: readonly string[] = [
  'authorization',
  'password',
  'secret',
  'token',
  'api_key',
  'apiKey',
  'access_token',
  'refresh_token',
  'client_secret',
  'cookie',
  'headers.authorization',
  'headers.Authorization',
  'headers.cookie',
  'headers["x-api-key"]',
  'headers["x-bf-vk"]',
];

/** Fields every line gets from the context it is written in (trace ids); none by default. */
let logContext: (() => LogFields | undefined) | undefined;
const NO_FIELDS: LogFields = {};

/**
 * Installs (or with `undefined` removes) the function whose fields are added to every log line of
 * every logger, e.g. the active span's `trace_id` and `span_id`. It runs once per written line.
 */
export function setLogContext(fn: (() => LogFields | undefined) | undefined): void {
  logContext = fn;
}

function errorFields(value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message };
  return value;
}

/** The fields of one call, with Error values reduced (see the module comment). */
function prepare(fields: LogFields | undefined): LogFields | undefined {
  if (fields === undefined) return undefined;
  let out: LogFields | undefined;
  for (const k in fields) {
    const v = fields[k];
    if (v instanceof Error) {
      out ??= { ...fields };
      out[k] = errorFields(v);
    }
  }
  return out ?? fields;
}

/**
 * The object pino writes for one call: `msg` first, then the fields (so a line reads
 * `{"level","time",<bindings>,"msg",...fields}`, as before the move to pino).
 */
function record(msg: string, fields: LogFields | undefined): LogFields {
  const prepared = prepare(fields);
  return prepared === undefined ? { msg } : { msg, ...prepared };
}

/** The pino instances of one logger family, so a level change reaches every child. */
class Family {
  private readonly members = new Set<WeakRef<PinoLogger>>();
  constructor(public current: LogLevelName) {}

  add(p: PinoLogger): void {
    this.members.add(new WeakRef(p));
  }

  setLevel(level: LogLevelName): void {
    this.current = level;
    for (const ref of this.members) {
      const p = ref.deref();
      if (p === undefined) this.members.delete(ref);
      else p.level = level;
    }
  }
}

class PinoBacked implements Logger {
  constructor(
    private readonly p: PinoLogger,
    private readonly family: Family,
  ) {}

  debug(msg: string, fields?: LogFields): void {
    if (this.p.isLevelEnabled('debug')) this.p.debug(record(msg, fields));
  }

  info(msg: string, fields?: LogFields): void {
    if (this.p.isLevelEnabled('info')) this.p.info(record(msg, fields));
  }

  warn(msg: string, fields?: LogFields): void {
    if (this.p.isLevelEnabled('warn')) this.p.warn(record(msg, fields));
  }

  error(msg: string, fields?: LogFields): void {
    if (this.p.isLevelEnabled('error')) this.p.error(record(msg, fields));
  }

  child(fields: LogFields): Logger {
    const c = this.p.child(prepare(fields) ?? {});
    this.family.add(c);
    return new PinoBacked(c, this.family);
  }

  isLevelEnabled(level: LogLevelName): boolean {
    return level !== 'silent' && this.p.isLevelEnabled(level);
  }

  level(): LogLevelName {
    return this.family.current;
  }

  setLevel(level: LogLevelName): void {
    this.family.setLevel(level);
  }
}

/**
 * Creates a logger writing JSON lines at `level` and above, with `fields` on every line, to
 * `sink` (default: stderr, written synchronously so no line is lost at exit).
 */
export function createLogger(level: LogLevelName, fields: LogFields = {}, sink?: LogSink): Logger {
  const destination: DestinationStream = sink
    ? {
        write: (chunk: string) => {
          sink(chunk.endsWith('\n') ? chunk.slice(0, -1) : chunk);
        },
      }
    : pino.destination({ fd: 2, sync: true });
  const root = pino(
    {
      level,
      base: prepare(fields) ?? {},
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
      mixin: () => (logContext === undefined ? NO_FIELDS : (logContext() ?? NO_FIELDS)),
      // pino's default strategy is Object.assign(mixinResult, lineFields): it would write every
      // line's fields into the shared NO_FIELDS object (and into a context object that is reused),
      // so each later line carried the fields of all earlier ones. Nothing shared is mutated here.
      mixinMergeStrategy: (line: object, context: object) => (context === NO_FIELDS ? line : { ...context, ...line }),
    },
    destination,
  );
  const family = new Family(level);
  family.add(root);
  return new PinoBacked(root, family);
}
