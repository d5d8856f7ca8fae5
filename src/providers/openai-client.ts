/**
 * One OpenAI-compatible model provider over HTTP: OpenAI itself, Azure OpenAI (through its
 * `/openai/v1` base URL), vLLM, llama.cpp's server, Ollama (`/v1`) and most others speak this wire
 * format (https://platform.openai.com/docs/api-reference).
 *
 * Every request passes, in order:
 * - the provider's concurrency limit: at most `max_concurrent_requests` in flight, then
 *   `max_queued_requests` waiting in FIFO order, then UPSTREAM_OVERLOADED (DESIGN.md §3);
 * - its circuit breaker (the same one upstream MCP clients use): 5xx answers, timeouts and
 *   connection failures count as failures; an open breaker fails fast with CIRCUIT_OPEN;
 * - a per-attempt timeout (`timeout_ms` until the response headers; for streams, also the longest
 *   silence between two chunks);
 * - retries (`max_retries`) of 429, 408, 409, 5xx and connection failures, waiting the provider's
 *   `retry-after-ms` / `retry-after` (seconds or an HTTP date) when it sends one, else exponential
 *   backoff with jitter; a wait longer than `retry_max_ms` is not taken, the error is answered.
 *
 * Streams (`stream: true`) are parsed with `eventsource-parser`
 * (https://github.com/rexxars/eventsource-parser); the request keeps its concurrency slot until
 * the stream ends or its consumer stops reading.
 */
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { GatewayError } from '../base/errors.js';
import { backoffDelay } from '../upstreams/backoff.js';
import { CircuitBreaker, type Admission, type BreakerSettings } from '../upstreams/circuit-breaker.js';
import { ConcurrencyLimiter } from '../upstreams/limiter.js';

/** Price of a model, USD per million tokens. */
export interface ModelPrice {
  readonly input_per_mtok: number;
  readonly output_per_mtok: number;
}

/** A provider's resolved settings (times in ms). */
export interface ProviderSettings {
  /** Registry name: ASCII letters, digits, `_`, `-`; the `name/` prefix of model names. */
  readonly name: string;
  /** Base URL the OpenAI paths are appended to, e.g. `https://api.openai.com/v1`. */
  readonly base_url: string;
  /** Sent as `Authorization: Bearer …`; `undefined` sends none (local servers). */
  readonly api_key: string | undefined;
  /** Extra request headers (e.g. `api-key` for Azure, `OpenAI-Organization`). */
  readonly headers: Readonly<Record<string, string>>;
  /** Model names this provider serves (used to resolve a bare model name); `[]` = resolve only `name/model`. */
  readonly models: readonly string[];
  /** Model used for embeddings when a caller names this provider but no model. */
  readonly embedding_model: string | undefined;
  readonly timeout_ms: number;
  readonly max_retries: number;
  readonly retry_initial_ms: number;
  readonly retry_max_ms: number;
  readonly max_concurrent_requests: number;
  readonly max_queued_requests: number;
  readonly circuit_breaker: BreakerSettings;
  /** Prices by model name, for the cost figures. */
  readonly pricing: Readonly<Record<string, ModelPrice>>;
  /** `responses`: the provider serves `/responses`; `chat_completions`: the Responses socket translates to `/chat/completions`. */
  readonly responses_api: 'responses' | 'chat_completions';
}

/** What happened to one provider call, for metrics. */
export interface ProviderObservation {
  readonly provider: string;
  readonly model: string;
  /** `chat.completions`, `responses`, `embeddings`. */
  readonly operation: string;
  /** `ok`, or the error code (`PROVIDER_RATE_LIMITED`, `PROVIDER_TIMEOUT`, ...). */
  readonly outcome: string;
  readonly seconds: number;
  readonly input_tokens: number;
  readonly output_tokens: number;
  readonly cost_usd: number;
  /** Retries taken (attempts − 1). */
  readonly retries: number;
}

export type ProviderObserver = (o: ProviderObservation) => void;

/** One parsed server-sent event of a stream: its `event:` name (if any) and `data:` parsed as JSON. */
export interface StreamEvent {
  readonly event: string | undefined;
  readonly data: Record<string, unknown>;
}

/** Token counts of an OpenAI `usage` object (chat: prompt/completion; responses and embeddings: input/output). */
export function usageTokens(usage: unknown): { input: number; output: number } {
  if (typeof usage !== 'object' || usage === null) return { input: 0, output: 0 };
  const u = usage as Record<string, unknown>;
  const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  return { input: num(u['input_tokens'] ?? u['prompt_tokens']), output: num(u['output_tokens'] ?? u['completion_tokens']) };
}

/**
 * The wait a 429/503 asks for, ms: `retry-after-ms`, else `retry-after` as seconds or an HTTP
 * date (RFC 9110 §10.2.3, https://www.rfc-editor.org/rfc/rfc9110#field.retry-after); `undefined`
 * when absent or unreadable.
 */
export function retryAfterMs(headers: Headers, now = Date.now()): number | undefined {
  const ms = headers.get('retry-after-ms');
  if (ms !== null && ms.trim() !== '' && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const ra = headers.get('retry-after');
  if (ra === null || ra.trim() === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(ra.trim())) return Math.max(0, Number(ra) * 1000);
  const at = Date.parse(ra);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

const RETRYABLE = new Set([408, 409, 429, 500, 502, 503, 504]);

interface Waiter {
  readonly start: () => void;
  readonly fail: (err: Error) => void;
}

/** A failed attempt: the error to answer if no retry follows, whether to retry, and the provider's wait. */
interface AttemptFailure {
  readonly error: GatewayError;
  readonly retry: boolean;
  readonly waitMs: number | undefined;
}

/** The provider's error message from an OpenAI error body `{"error":{"message","type","code"}}`. */
function providerMessage(text: string): { message: string; type?: string; code?: string } {
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown; type?: unknown; code?: unknown } | string };
    const e = body.error;
    if (typeof e === 'string') return { message: e };
    if (e && typeof e.message === 'string') {
      return { message: e.message, ...(typeof e.type === 'string' ? { type: e.type } : {}), ...(typeof e.code === 'string' ? { code: e.code } : {}) };
    }
  } catch {
    // not JSON: the text itself
  }
  return { message: text.slice(0, 500) };
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new GatewayError('REQUEST_CANCELLED'));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new GatewayError('REQUEST_CANCELLED'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A request slot: released once, when the call (or its stream) ends. */
interface Slot {
  release(): void;
}

export class OpenAiProvider {
  readonly breaker: CircuitBreaker;
  private readonly limiter: ConcurrencyLimiter<Waiter>;
  /** Calls answered successfully / failed since start, and the last error text (for health). */
  private okCount = 0;
  private errorCount = 0;
  private lastError: { readonly message: string; readonly at: string } | undefined;

  constructor(
    private settingsValue: ProviderSettings,
    private readonly observe: ProviderObserver = () => undefined,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {
    this.breaker = new CircuitBreaker(settingsValue.circuit_breaker);
    this.limiter = new ConcurrencyLimiter(settingsValue.max_concurrent_requests, settingsValue.max_queued_requests);
  }

  get settings(): ProviderSettings {
    return this.settingsValue;
  }

  get name(): string {
    return this.settingsValue.name;
  }

  /** New settings (a changed key, URL or limits); calls in flight finish with the old ones. */
  reconfigure(s: ProviderSettings): void {
    this.settingsValue = s;
    this.breaker.reconfigure(s.circuit_breaker);
    this.limiter.reconfigure(s.max_concurrent_requests, s.max_queued_requests);
  }

  /** The provider's state for `/health` and the provider health routes. */
  health(): { status: 'healthy' | 'degraded' | 'unhealthy'; circuit: string; in_flight: number; queued: number; requests_ok: number; requests_failed: number; last_error?: { message: string; at: string } } {
    const circuit = this.breaker.state;
    const recentFailure = this.lastError !== undefined && this.errorCount > 0 && this.breaker.snapshot.state === 'closed' && this.breaker.snapshot.failures > 0;
    return {
      status: circuit === 'open' ? 'unhealthy' : circuit === 'half_open' || recentFailure ? 'degraded' : 'healthy',
      circuit,
      in_flight: this.limiter.inFlight,
      queued: this.limiter.queued,
      requests_ok: this.okCount,
      requests_failed: this.errorCount,
      ...(this.lastError ? { last_error: { ...this.lastError } } : {}),
    };
  }

  dispose(): void {
    for (const w of this.limiter.drain()) w.fail(new GatewayError('SHUTTING_DOWN'));
    this.breaker.dispose();
  }

  /** Cost of `input`/`output` tokens of `model`, USD (0 when the model has no price). */
  cost(model: string, input: number, output: number): number {
    const p = this.settingsValue.pricing[model];
    return p ? (input * p.input_per_mtok + output * p.output_per_mtok) / 1e6 : 0;
  }

  /**
   * `POST {base_url}{path}` with a JSON body; resolves with the parsed JSON answer.
   * @throws GatewayError PROVIDER_ERROR, PROVIDER_RATE_LIMITED, PROVIDER_TIMEOUT, CIRCUIT_OPEN,
   * UPSTREAM_OVERLOADED, REQUEST_CANCELLED.
   */
  async postJson(operation: string, path: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<Record<string, unknown>> {
    const started = performance.now();
    const model = typeof body['model'] === 'string' ? body['model'] : '';
    let retries = 0;
    try {
      const slot = await this.acquire(signal);
      try {
        const { response, attempts } = await this.send(path, body, signal);
        retries = attempts - 1;
        const text = await this.withTimeout(response.text(), signal);
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          throw new GatewayError('PROVIDER_ERROR', `provider ${this.name} answered ${path} with a body that is not JSON`, { provider: this.name, status: response.status });
        }
        if (typeof json !== 'object' || json === null || Array.isArray(json)) {
          throw new GatewayError('PROVIDER_ERROR', `provider ${this.name} answered ${path} with JSON that is not an object`, { provider: this.name, status: response.status });
        }
        const usage = usageTokens((json as Record<string, unknown>)['usage']);
        this.okCount++;
        this.observe({ provider: this.name, model, operation, outcome: 'ok', seconds: (performance.now() - started) / 1000, input_tokens: usage.input, output_tokens: usage.output, cost_usd: this.cost(model, usage.input, usage.output), retries });
        return json as Record<string, unknown>;
      } finally {
        slot.release();
      }
    } catch (err) {
      this.failed(operation, model, started, err, retries);
      throw err;
    }
  }

  /**
   * `POST {base_url}{path}` with `stream: true`; yields each server-sent event's JSON `data`
   * (`[DONE]` ends the stream). Usage from the events is reported when the stream ends: pass
   * `onUsage` a function that extracts it from an event. Breaking out of the loop cancels the
   * request. Errors as {@link postJson}, also while streaming (a silence over `timeout_ms` is
   * PROVIDER_TIMEOUT).
   */
  async *stream(operation: string, path: string, body: Record<string, unknown>, signal?: AbortSignal, onUsage?: (e: StreamEvent) => unknown): AsyncGenerator<StreamEvent, void, undefined> {
    const started = performance.now();
    const model = typeof body['model'] === 'string' ? body['model'] : '';
    let retries = 0;
    let usage = { input: 0, output: 0 };
    let slot: Slot | undefined;
    let reader: ReadableStreamDefaultReader<{ event?: string | undefined; data: string }> | undefined;
    try {
      slot = await this.acquire(signal);
      const { response, attempts } = await this.send(path, { ...body, stream: true }, signal);
      retries = attempts - 1;
      if (!response.body) throw new GatewayError('PROVIDER_ERROR', `provider ${this.name} sent no stream body`, { provider: this.name });
      reader = response.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream()).getReader();
      for (;;) {
        const next = await this.withTimeout(reader.read(), signal, 'stream');
        if (next.done) break;
        const msg = next.value;
        if (msg.data === '[DONE]') break;
        let data: unknown;
        try {
          data = JSON.parse(msg.data);
        } catch {
          throw new GatewayError('PROVIDER_ERROR', `provider ${this.name} streamed an event whose data is not JSON`, { provider: this.name, event: msg.event ?? null });
        }
        if (typeof data !== 'object' || data === null || Array.isArray(data)) continue;
        const event: StreamEvent = { event: msg.event, data: data as Record<string, unknown> };
        const u = onUsage?.(event);
        if (u !== undefined) usage = usageTokens(u);
        yield event;
      }
      this.okCount++;
      this.observe({ provider: this.name, model, operation, outcome: 'ok', seconds: (performance.now() - started) / 1000, input_tokens: usage.input, output_tokens: usage.output, cost_usd: this.cost(model, usage.input, usage.output), retries });
    } catch (err) {
      this.failed(operation, model, started, err, retries);
      throw err;
    } finally {
      reader?.cancel().catch(() => undefined);
      slot?.release();
    }
  }

  private failed(operation: string, model: string, started: number, err: unknown, retries: number): void {
    const code = err instanceof GatewayError ? err.code : 'INTERNAL_ERROR';
    if (code !== 'REQUEST_CANCELLED') {
      this.errorCount++;
      this.lastError = { message: err instanceof Error ? err.message : String(err), at: new Date().toISOString() };
    }
    this.observe({ provider: this.name, model, operation, outcome: code, seconds: (performance.now() - started) / 1000, input_tokens: 0, output_tokens: 0, cost_usd: 0, retries });
  }

  /** Waits for a concurrency slot (FIFO). */
  private acquire(signal: AbortSignal | undefined): Promise<Slot> {
    const slot: Slot = {
      release: () => {
        slot.release = () => undefined;
        this.limiter.release()?.start();
      },
    };
    if (this.limiter.tryAcquire()) return Promise.resolve(slot);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        start: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(slot);
        },
        fail: reject,
      };
      const onAbort = (): void => {
        if (this.limiter.remove(waiter)) reject(new GatewayError('REQUEST_CANCELLED'));
      };
      if (!this.limiter.enqueue(waiter)) {
        reject(new GatewayError('UPSTREAM_OVERLOADED', `model provider ${this.name} overloaded: ${this.settingsValue.max_concurrent_requests} requests in flight and ${this.settingsValue.max_queued_requests} queued`, { provider: this.name }));
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** `promise`, or PROVIDER_TIMEOUT after `timeout_ms`, or REQUEST_CANCELLED on `signal`. */
  private withTimeout<T>(promise: Promise<T>, signal: AbortSignal | undefined, what = 'answer'): Promise<T> {
    const ms = this.settingsValue.timeout_ms;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new GatewayError('PROVIDER_TIMEOUT', `provider ${this.name}: no ${what} within ${ms} ms`, { provider: this.name, timeout_ms: ms }));
      }, ms);
      const onAbort = (): void => {
        cleanup();
        reject(new GatewayError('REQUEST_CANCELLED'));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      promise.then(
        (v) => {
          cleanup();
          resolve(v);
        },
        (err: unknown) => {
          cleanup();
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  /**
   * Sends with retries; resolves with a 2xx response (its body unread) and the attempts taken.
   * Each attempt passes the circuit breaker.
   */
  private async send(path: string, body: Record<string, unknown>, signal: AbortSignal | undefined): Promise<{ response: Response; attempts: number }> {
    const s = this.settingsValue;
    const payload = JSON.stringify(body);
    for (let attempt = 0; ; attempt++) {
      const admission: Admission = this.breaker.admit();
      if (admission === 'reject') {
        const snap = this.breaker.snapshot;
        throw new GatewayError('CIRCUIT_OPEN', `model provider ${this.name}: circuit breaker open`, { provider: this.name, ...(snap.state === 'open' ? { retry_at: new Date(snap.retryAt).toISOString() } : {}) });
      }
      const trial = admission === 'trial';
      const failure = await this.attempt(path, payload, signal).then(
        (response): AttemptFailure | Response => response,
        (err: unknown): AttemptFailure => {
          if (err instanceof GatewayError && err.code === 'REQUEST_CANCELLED') throw err;
          return err instanceof GatewayError
            ? { error: err, retry: true, waitMs: undefined }
            : { error: new GatewayError('PROVIDER_ERROR', `provider ${this.name} unreachable: ${err instanceof Error ? err.message : String(err)}`, { provider: this.name }), retry: true, waitMs: undefined };
        },
      );
      if (failure instanceof Response && failure.ok) {
        this.breaker.record('success', trial);
        return { response: failure, attempts: attempt + 1 };
      }
      const f = failure instanceof Response ? await this.describe(failure) : failure;
      // 429 says the provider is busy, not broken: it does not count against the breaker
      const status = failure instanceof Response ? failure.status : 0;
      this.breaker.record(status === 429 || (status >= 400 && status < 500) ? 'release' : 'failure', trial);
      if (!f.retry || attempt >= s.max_retries) throw f.error;
      const wait = f.waitMs ?? backoffDelay(attempt, { initial_ms: s.retry_initial_ms, max_ms: s.retry_max_ms, max_retries: undefined });
      if (wait > s.retry_max_ms) throw f.error;
      await sleep(wait, signal);
    }
  }

  /** One HTTP attempt: a Response (any status) or a thrown timeout / network error. */
  private async attempt(path: string, payload: string, signal: AbortSignal | undefined): Promise<Response> {
    const s = this.settingsValue;
    const controller = new AbortController();
    const onAbort = (): void => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const url = s.base_url.replace(/\/+$/, '') + path;
    try {
      return await this.withTimeout(
        this.fetchImpl(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            ...(s.api_key !== undefined ? { authorization: `Bearer ${s.api_key}` } : {}),
            ...s.headers,
          },
          body: payload,
          signal: controller.signal,
        }),
        signal,
        'response headers',
      );
    } catch (err) {
      controller.abort();
      throw err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Reads a non-2xx answer into the error to raise and whether to retry it. */
  private async describe(res: Response): Promise<AttemptFailure> {
    const text = await this.withTimeout(res.text(), undefined).catch(() => '');
    const p = providerMessage(text);
    const waitMs = retryAfterMs(res.headers);
    const details = { provider: this.name, status: res.status, provider_message: p.message, ...(p.type ? { provider_type: p.type } : {}), ...(p.code ? { provider_code: p.code } : {}), ...(waitMs !== undefined ? { retry_after_ms: waitMs } : {}) };
    if (res.status === 429) return { error: new GatewayError('PROVIDER_RATE_LIMITED', `provider ${this.name} rate limit: ${p.message}`, details), retry: true, waitMs };
    return { error: new GatewayError('PROVIDER_ERROR', `provider ${this.name} answered ${res.status}: ${p.message}`, details), retry: RETRYABLE.has(res.status), waitMs };
  }
}
