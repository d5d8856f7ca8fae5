/**
 * Structured logger: one JSON object per line on stderr (stdout stays free for tools that pipe
 * the gateway). Levels follow the usual order debug < info < warn < error; `silent` drops all.
 */
export type LogLevelName = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const ORDER: Record<LogLevelName, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export type LogFields = Record<string, unknown>;

/** A logger bound to a component name; `child` adds fixed fields. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
  isLevelEnabled(level: LogLevelName): boolean;
}

/** Where log lines go; replaced in tests to capture output. */
export type LogSink = (line: string) => void;

const stderrSink: LogSink = (line) => {
  process.stderr.write(line + '\n');
};

function errorFields(value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message };
  return value;
}

/**
 * Creates a logger writing JSON lines `{"time","level","msg",...fields}` at `level` and above.
 * Error values in fields are reduced to `{name, message}` so stack traces with paths or secrets
 * do not leak into shipped logs.
 */
export function createLogger(level: LogLevelName, fields: LogFields = {}, sink: LogSink = stderrSink): Logger {
  const threshold = ORDER[level];
  const write = (lvl: Exclude<LogLevelName, 'silent'>, msg: string, extra?: LogFields): void => {
    if (ORDER[lvl] < threshold) return;
    const record: LogFields = { time: new Date().toISOString(), level: lvl, msg, ...fields };
    if (extra) for (const [k, v] of Object.entries(extra)) record[k] = errorFields(v);
    let line: string;
    try {
      line = JSON.stringify(record);
    } catch {
      line = JSON.stringify({ time: record['time'], level: lvl, msg, note: 'unserializable fields' });
    }
    sink(line);
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (more) => createLogger(level, { ...fields, ...more }, sink),
    isLevelEnabled: (l) => ORDER[l] >= threshold && l !== 'silent',
  };
}
