/**
 * Loads the gateway configuration: a JSON file (`--config PATH` or `TRIBUTARY_CONFIG`), else the
 * embedded default; then env overrides `PORT`, `HOST`, `DATA_DIR`, `LOG_LEVEL`; then defaults.
 * A bad file raises {@link ConfigError} naming the file and every bad field by path.
 */
import { readFileSync } from 'node:fs';
import { isLeft } from 'fp-ts/lib/Either.js';
import { formatIoTsErrors } from '../base/io-ts-errors.js';
import { findUnknownFields, nearestName } from '../base/unknown-fields.js';
import type * as t from 'io-ts';
import { isPasswordHash } from '../base/password.js';
import { DEFAULT_RATE_LIMITS } from '../base/principal.js';
import { DEFAULT_SANDBOX_LIMITS, GatewayConfigFile, LogLevel, MAX_POOL_SIZE, type AuthConfig, type GatewayConfig, type McpClientConfig, type ModelProviderConfig, type ResolvedAuthConfig } from './schema.js';
import { resolveOAuthResource, resolveUpstreamOAuth } from './oauth.js';
import { defaultConfigFile } from './default.js';
import { INPROCESS_SERVERS } from './inprocess-names.js';
import { resolveResilience } from './resilience.js';

/** The largest `server.workers` (threads on the port). */
const MAX_SERVER_WORKERS = 64;

/** Raised for an unreadable or invalid configuration; `problems` lists `path: message` lines. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(`invalid configuration (${source}):\n  ${problems.join('\n  ')}`);
  }
}

/**
 * Checks what io-ts cannot: the fields each connection type needs, URL schemes, known in-process
 * servers, headers for auth_type "headers", tool_prefix characters, tools_to_auto_execute ⊆
 * tools_to_execute. Appends `path: problem` lines under `at` (e.g. `mcp_clients.0`, or `` for a body).
 */
export function checkClient(c: McpClientConfig, at: string, problems: string[]): void {
  const auto = c.tools_to_auto_execute ?? [];
  const exec = c.tools_to_execute;
  if (auto.length > 0 && !auto.includes('*') && exec !== undefined && !exec.includes('*')) {
    const extra = auto.filter((tool) => !exec.includes(tool));
    if (extra.length > 0) problems.push(`${at}tools_to_auto_execute: must be a subset of tools_to_execute; not in it: ${JSON.stringify(extra)}`);
  }
  if (auto.includes('*') && exec !== undefined && exec.length === 0) {
    problems.push(`${at}tools_to_auto_execute: ["*"] needs tools_to_execute to allow some tool`);
  }
  checkConnection(c, at, problems);
}

function checkConnection(c: McpClientConfig, at: string, problems: string[]): void {
  switch (c.connection_type) {
    case 'stdio':
      if (!c.stdio_config) problems.push(`${at}stdio_config: required for connection_type "stdio"`);
      else if ((c.stdio_config.pool_size ?? 1) > MAX_POOL_SIZE) problems.push(`${at}stdio_config.pool_size: at most ${MAX_POOL_SIZE}, got ${c.stdio_config.pool_size}`);
      break;
    case 'http':
    case 'sse':
      if (!c.connection_string) {
        problems.push(`${at}connection_string: required for connection_type "${c.connection_type}"`);
      } else {
        try {
          const u = new URL(c.connection_string);
          if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
        } catch {
          problems.push(`${at}connection_string: not an http(s) URL: ${JSON.stringify(c.connection_string)}`);
        }
      }
      break;
    case 'inprocess':
      if (!c.inprocess_server || !INPROCESS_SERVERS.includes(c.inprocess_server)) {
        problems.push(`${at}inprocess_server: expected one of ${JSON.stringify(INPROCESS_SERVERS)}, got ${JSON.stringify(c.inprocess_server ?? null)}`);
      }
      break;
  }
  if (c.auth_type === 'headers' && (!c.headers || Object.keys(c.headers).length === 0)) {
    problems.push(`${at}headers: required (non-empty) when auth_type is "headers"`);
  }
  if (c.tool_prefix !== undefined && !/^[A-Za-z0-9_-]*$/.test(c.tool_prefix)) {
    problems.push(`${at}tool_prefix: only ASCII letters, digits, "_" and "-" are allowed`);
  }
  const r = resolveResilience(c).reconnect;
  if (r.initial_ms > r.max_ms) problems.push(`${at}reconnect.initial_ms: must not exceed reconnect.max_ms (${r.max_ms})`);
}

/**
 * Decodes and checks a parsed config document, fills defaults and applies env overrides.
 * @throws ConfigError naming `source` and each bad field.
 */
export function resolveConfig(doc: unknown, source: string, env: NodeJS.ProcessEnv = {}): GatewayConfig {
  const decoded = GatewayConfigFile.decode(doc);
  const unknown = unknownConfigKeys(doc);
  if (isLeft(decoded)) throw new ConfigError(source, [...formatIoTsErrors(decoded.left), ...unknown]);
  if (unknown.length > 0) throw new ConfigError(source, unknown);
  const file = decoded.right;
  const problems: string[] = [];
  const clients = file.mcp_clients ?? [];
  const seen = new Set<string>();
  clients.forEach((c, i) => {
    checkClient(c, `mcp_clients.${i}.`, problems);
    if (seen.has(c.name)) problems.push(`mcp_clients.${i}.name: duplicate client name ${JSON.stringify(c.name)}`);
    seen.add(c.name);
  });
  let port = file.server?.port ?? 8080;
  if (env['PORT'] !== undefined && env['PORT'] !== '') {
    const p = Number(env['PORT']);
    if (!Number.isInteger(p) || p < 0 || p > 65535) problems.push(`env PORT: expected a port number 0..65535, got ${JSON.stringify(env['PORT'])}`);
    else port = p;
  }
  let logLevel = file.log_level ?? 'info';
  if (env['LOG_LEVEL']) {
    if (LogLevel.is(env['LOG_LEVEL'])) logLevel = env['LOG_LEVEL'];
    else problems.push(`env LOG_LEVEL: expected one of debug, info, warn, error, silent, got ${JSON.stringify(env['LOG_LEVEL'])}`);
  }
  const host = env['HOST'] || file.server?.host || '127.0.0.1';
  const auth = resolveAuth(file.auth ?? {}, host, env, problems);
  const providers = resolveProviders(file.model_providers?.providers ?? [], env, problems);
  const encryptionKey = env['TRIBUTARY_PROVIDER_KEY'] || file.model_providers?.encryption_key;
  // sealed session ids (cluster): base64 of 32 bytes each, the first seals
  const sessionKeys = env['TRIBUTARY_SESSION_KEYS'] ? env['TRIBUTARY_SESSION_KEYS'].split(',').map((k) => k.trim()).filter((k) => k !== '') : (file.cluster?.session_keys ?? []);
  const slack = file.cluster?.rate_limit_slack;
  if (slack !== undefined && !(slack >= 0 && slack < 1)) problems.push(`cluster.rate_limit_slack: expected a number from 0 (exact) up to but not including 1, got ${slack}`);
  sessionKeys.forEach((k, i) => {
    if (Buffer.from(k, 'base64').length !== 32) problems.push(`cluster.session_keys.${i}: expected base64 of 32 random bytes`);
  });
  if (encryptionKey !== undefined && Buffer.from(encryptionKey, 'base64').length !== 32) problems.push('model_providers.encryption_key: expected base64 of 32 bytes');
  const defaultProvider = file.model_providers?.default_provider;
  if (defaultProvider !== undefined && !providers.some((p) => p.name === defaultProvider)) problems.push(`model_providers.default_provider: no provider named ${JSON.stringify(defaultProvider)}`);
  const upstreamOAuth = resolveUpstreamOAuth(file.oauth, env, problems);
  // one thread per core is the most that can help; beyond a box's cores threads only add hops
  if ((file.server?.workers ?? 1) > MAX_SERVER_WORKERS) problems.push(`server.workers: at most ${MAX_SERVER_WORKERS}, got ${file.server?.workers}`);
  if (problems.length > 0) throw new ConfigError(source, problems);
  const s = file.server ?? {};
  return {
    server: {
      host,
      port,
      allowed_origins: s.allowed_origins ?? [],
      allowed_hosts: s.allowed_hosts,
      max_body_bytes: s.max_body_bytes ?? 4 * 1024 * 1024,
      concurrency: s.concurrency ?? 256,
      max_queued: s.max_queued ?? 1024,
      shutdown_timeout_ms: s.shutdown_timeout_ms ?? 10_000,
      session_idle_timeout_ms: s.session_idle_timeout_ms ?? 30 * 60_000,
      max_sessions: s.max_sessions ?? 10_000,
      page_size: s.page_size ?? 1000,
      sse_keepalive_ms: s.sse_keepalive_ms ?? 15_000,
      ready_timeout_ms: s.ready_timeout_ms ?? 15_000,
      workers: s.workers ?? 1,
      worker_mcp_calls: s.worker_mcp_calls ?? true,
      main_thread_listens: s.main_thread_listens ?? true,
    },
    data_dir: env['DATA_DIR'] || file.data_dir || './data',
    log_level: logLevel,
    mcp_clients: clients,
    tool_log: {
      max_entries: file.tool_log?.max_entries ?? 100_000,
      max_age_ms: file.tool_log?.max_age_ms ?? 7 * 24 * 3600_000,
      max_payload_bytes: file.tool_log?.max_payload_bytes ?? 16 * 1024,
      sweep_interval_ms: file.tool_log?.sweep_interval_ms ?? 60_000,
    },
    store: {
      batch_window_ms: file.store?.batch_window_ms ?? 0,
      max_batch: file.store?.max_batch ?? 1000,
      write_buffer_mib: file.store?.write_buffer_mib ?? 32,
      max_file_mib: file.store?.max_file_mib ?? 8,
      compression: file.store?.compression ?? true,
    },
    events: {
      max_queued: file.events?.max_queued ?? 1000,
      max_stored: file.events?.max_stored ?? 100_000,
      max_replay: file.events?.max_replay ?? 100_000,
      ping_interval_ms: file.events?.ping_interval_ms ?? 30_000,
      idle_timeout_s: Math.max(8, file.events?.idle_timeout_s ?? 120),
    },
    auth,
    webhooks: {
      github_secret: env['TRIBUTARY_GITHUB_WEBHOOK_SECRET'] || file.webhooks?.github_secret,
      max_remembered_deliveries: file.webhooks?.max_remembered_deliveries ?? 10_000,
    },
    tracing: resolveTracing(file.tracing ?? {}, env),
    orchestration: {
      strategy: file.orchestration?.strategy ?? 'least_loaded',
      heartbeat_timeout_ms: file.orchestration?.heartbeat_timeout_ms ?? 30_000,
      max_queued_tasks: file.orchestration?.max_queued_tasks ?? 1000,
      max_attempts: file.orchestration?.max_attempts ?? 3,
      max_tasks_per_agent: file.orchestration?.max_tasks_per_agent ?? 10,
      finished_task_retention_ms: file.orchestration?.finished_task_retention_ms ?? 7 * 24 * 3600_000,
    },
    workspaces: {
      lock_ttl_ms: file.workspaces?.lock_ttl_ms ?? 30_000,
      cursor_audit_ms: file.workspaces?.cursor_audit_ms ?? 50,
      max_document_bytes: file.workspaces?.max_document_bytes ?? 8 * 1024 * 1024,
      max_members: file.workspaces?.max_members ?? 256,
    },
    model_providers: { providers, encryption_key: encryptionKey, default_provider: defaultProvider },
    embeddings: {
      max_vectors_per_tenant: file.embeddings?.max_vectors_per_tenant ?? 200_000,
      max_search_limit: file.embeddings?.max_search_limit ?? 100,
      max_text_chars: file.embeddings?.max_text_chars ?? 32_768,
      max_batch: file.embeddings?.max_batch ?? 256,
    },
    responses: {
      max_tool_rounds: file.responses?.max_tool_rounds ?? 8,
      max_in_flight: file.responses?.max_in_flight ?? 8,
      max_tools: file.responses?.max_tools ?? 128,
      max_remembered: file.responses?.max_remembered ?? 64,
    },
    ui: {
      enabled: file.ui?.enabled ?? true,
      session_idle_s: file.ui?.session_idle_s ?? 1800,
      session_max_s: file.ui?.session_max_s ?? 43_200,
    },
    tool_modes: {
      default: file.tool_modes?.default ?? 'full',
      clients: file.tool_modes?.clients ?? {},
      max_search_results: file.tool_modes?.max_search_results ?? 10,
      sandbox: { ...DEFAULT_SANDBOX_LIMITS, ...file.tool_modes?.sandbox },
    },
    oauth: upstreamOAuth,
    cluster:
      file.cluster === undefined
        ? undefined
        : {
            nats_url: file.cluster.nats_url,
            node_id: file.cluster.node_id,
            name: file.cluster.name ?? 'tributary',
            connect_timeout_ms: file.cluster.connect_timeout_ms ?? 5_000,
            max_buffered_events: file.cluster.max_buffered_events ?? 10_000,
            event_linger_ms: file.cluster.event_linger_ms ?? 10,
            stream_max_msgs: file.cluster.stream_max_msgs ?? file.events?.max_stored ?? 100_000,
            session_keys: sessionKeys,
            session_max_age_ms: file.cluster.session_max_age_ms ?? 24 * 3_600_000,
            rate_limit_slack: file.cluster.rate_limit_slack ?? 0.1,
          },
  };
}

/**
 * Checks the configured model providers (unique names, http(s) base URLs, `api_key_env` set in
 * the environment) and puts each one's API key in `api_key` (the variable wins over the file).
 */
function resolveProviders(list: readonly ModelProviderConfig[], env: NodeJS.ProcessEnv, problems: string[]): ModelProviderConfig[] {
  const seen = new Set<string>();
  return list.map((p, i) => {
    const at = `model_providers.providers.${i}.`;
    if (seen.has(p.name)) problems.push(`${at}name: duplicate provider name ${JSON.stringify(p.name)}`);
    if (p.name === 'local') problems.push(`${at}name: "local" is the built-in embedding provider`);
    seen.add(p.name);
    let url: URL | undefined;
    try {
      url = new URL(p.base_url);
    } catch {
      problems.push(`${at}base_url: not a URL: ${JSON.stringify(p.base_url)}`);
    }
    if (url && url.protocol !== 'http:' && url.protocol !== 'https:') problems.push(`${at}base_url: expected http or https, got ${url.protocol}`);
    let apiKey = p.api_key;
    if (p.api_key_env !== undefined) {
      const v = env[p.api_key_env];
      if (v === undefined || v === '') problems.push(`${at}api_key_env: environment variable ${p.api_key_env} is not set`);
      else apiKey = v;
    }
    return { ...p, ...(apiKey !== undefined ? { api_key: apiKey } : {}) };
  });
}

/**
 * Keys of a config document that no codec declares, at any depth, as
 * `server.prot: unknown key (did you mean port?)` lines (the suggestion only when a declared key
 * is a few edits away). A typo would otherwise leave a setting at its default without a word.
 */
export function unknownConfigKeys(doc: unknown): string[] {
  return findUnknownFields(GatewayConfigFile, doc).map((u) => {
    const near = nearestName(u.key, u.known);
    return `${u.path}: unknown key${near !== undefined ? ` (did you mean ${near}?)` : ''}`;
  });
}

/** Loopback addresses and names: binding one of these keeps the gateway local to this machine. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/**
 * Resolves the `auth` section: on for non-loopback binds unless `disabled: true`;
 * secrets from env `TRIBUTARY_ADMIN_PASSWORD` and `TRIBUTARY_JWT_SECRET` override the file.
 * Pushes problems (malformed password hash, short HS256 secret) onto `problems`.
 */
function resolveAuth(a: t.TypeOf<typeof AuthConfig>, host: string, env: NodeJS.ProcessEnv, problems: string[]): ResolvedAuthConfig {
  const loopback = isLoopbackHost(host);
  const enabled = a.disabled === undefined ? !loopback : !a.disabled;
  const reason =
    a.disabled === undefined ? (loopback ? `off: bound to loopback ${host} (set auth.disabled: false to turn it on)` : `on: bound to ${host}, not loopback`) : `${enabled ? 'on' : 'off'}: auth.disabled is ${String(a.disabled)}`;
  const envPassword = env['TRIBUTARY_ADMIN_PASSWORD'];
  let admin: ResolvedAuthConfig['admin'];
  if (a.admin) {
    if (a.admin.password_hash !== undefined && !isPasswordHash(a.admin.password_hash)) {
      problems.push('auth.admin.password_hash: expected scrypt$N$r$p$salt$hash (make one with `npm run hash-password`)');
    }
    admin = { username: a.admin.username, ...(a.admin.password_hash !== undefined ? { password_hash: a.admin.password_hash } : {}), ...(envPassword ? { password: envPassword } : {}) };
    if (admin.password_hash === undefined && admin.password === undefined) problems.push('auth.admin: needs password_hash or env TRIBUTARY_ADMIN_PASSWORD');
  } else if (envPassword) {
    admin = { username: env['TRIBUTARY_ADMIN_USER'] || 'admin', password: envPassword };
  }
  const secret = env['TRIBUTARY_JWT_SECRET'] || a.jwt?.hs256_secret;
  if (secret !== undefined && Buffer.byteLength(secret) < 32) problems.push('auth.jwt.hs256_secret: must be at least 32 bytes (RFC 7518 §3.2)');
  const jwt =
    a.jwt || secret
      ? {
          ...(secret !== undefined ? { hs256_secret: secret } : {}),
          ...(a.jwt?.jwks_file !== undefined ? { jwks_file: a.jwt.jwks_file } : {}),
          ...(a.jwt?.issuer !== undefined ? { issuer: a.jwt.issuer } : {}),
          ...(a.jwt?.audience !== undefined ? { audience: a.jwt.audience } : {}),
          clock_tolerance_s: a.jwt?.clock_tolerance_s ?? 30,
          tenant_claim: a.jwt?.tenant_claim ?? 'tenant_id',
          role_claim: a.jwt?.role_claim ?? 'role',
        }
      : undefined;
  if (jwt && jwt.hs256_secret === undefined && jwt.jwks_file === undefined) problems.push('auth.jwt: needs hs256_secret (or env TRIBUTARY_JWT_SECRET) or jwks_file');
  return {
    enabled,
    reason,
    admin,
    jwt,
    oauth: resolveOAuthResource(a.oauth, problems),
    rate_limits: {
      requests_per_hour: a.rate_limits?.requests_per_hour ?? DEFAULT_RATE_LIMITS.requests_per_hour,
      burst_per_minute: a.rate_limits?.burst_per_minute ?? DEFAULT_RATE_LIMITS.burst_per_minute,
      tool_executions_per_hour: a.rate_limits?.tool_executions_per_hour ?? DEFAULT_RATE_LIMITS.tool_executions_per_hour,
    },
    metrics_require_auth: a.metrics_require_auth ?? false,
    max_login_failures: a.max_login_failures ?? 5,
    login_failure_window_s: a.login_failure_window_s ?? 900,
  };
}

/** Reads `path` as JSON and resolves it. @throws ConfigError for unreadable, non-JSON or invalid files. */
export function loadConfigFile(path: string, env: NodeJS.ProcessEnv = {}): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, [`cannot read file: ${(err as Error).message}`]);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(path, [`not valid JSON: ${(err as Error).message}`]);
  }
  return resolveConfig(doc, path, env);
}

/** Finds `--config PATH` / `--config=PATH` in argv, else `TRIBUTARY_CONFIG`. */
export function configPathFrom(argv: readonly string[], env: NodeJS.ProcessEnv): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--config') {
      const next = argv[i + 1];
      if (next === undefined) throw new ConfigError('command line', ['--config needs a file path']);
      return next;
    }
    if (a?.startsWith('--config=')) return a.slice('--config='.length);
  }
  return env['TRIBUTARY_CONFIG'] || undefined;
}

/** The whole start-up rule: file if given, else the embedded default; env overrides either. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): GatewayConfig {
  const path = configPathFrom(argv, env);
  if (path !== undefined) return loadConfigFile(path, env);
  return resolveConfig(defaultConfigFile(), 'embedded default config', env);
}

/**
 * The tracing section with the standard OpenTelemetry environment variables applied
 * (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/): the OTLP
 * endpoint (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`)
 * and `OTEL_TRACES_SAMPLER_ARG` override the file; `OTEL_SDK_DISABLED=true` turns tracing off.
 */
function resolveTracing(file: { otlp_endpoint?: string; sample_ratio?: number; capture_payloads?: boolean; service_name?: string; active_context?: boolean }, env: NodeJS.ProcessEnv): GatewayConfig['tracing'] {
  const base = env['OTEL_EXPORTER_OTLP_ENDPOINT'];
  const endpoint = env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] || (base ? `${base.replace(/\/+$/, '')}/v1/traces` : undefined) || file.otlp_endpoint;
  const ratioEnv = env['OTEL_TRACES_SAMPLER_ARG'];
  const ratio = ratioEnv !== undefined && ratioEnv !== '' && Number.isFinite(Number(ratioEnv)) ? Number(ratioEnv) : (file.sample_ratio ?? 1);
  return {
    otlp_endpoint: env['OTEL_SDK_DISABLED']?.toLowerCase() === 'true' ? undefined : endpoint,
    sample_ratio: Math.min(1, Math.max(0, ratio)),
    capture_payloads: file.capture_payloads ?? false,
    service_name: env['OTEL_SERVICE_NAME'] || file.service_name || 'tributary',
    active_context: file.active_context ?? false,
  };
}
