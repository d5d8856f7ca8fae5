/**
 * Framing of MCP's stdio transport: newline-delimited JSON-RPC 2.0 messages, UTF-8, one message
 * per line, no embedded newlines (https://modelcontextprotocol.io/specification/2025-06-18/basic/transports#stdio,
 * https://www.jsonrpc.org/specification). The reading side of the SDK's `ReadBuffer` and
 * `deserializeMessage` (1.32), cheaper per message on the gateway's hot path:
 *
 * - A chunk that holds several complete lines is converted to a string once and split there (a
 *   newline byte, 0x0A, never occurs inside a multi-byte UTF-8 sequence, and JSON text escapes
 *   newlines inside strings), instead of one `Buffer.concat` per chunk and one conversion per line.
 *   Only the unfinished tail of a chunk is kept, as a copy (a small remainder does not pin the whole
 *   read buffer); the parts of a long line are joined once, when its newline arrives.
 * - Each line is checked against the JSON-RPC 2.0 message shapes the SDK's `JSONRPCMessageSchema`
 *   accepts (request, notification, result response, error response; no other top-level member) by
 *   plain property reads, instead of a zod parse that also copies every message. Result and params
 *   contents are not checked here: results are relayed as the upstream wrote them, and the SDK
 *   `Client` validates what it consumes itself.
 * - A result response written compactly (`{"result":R,"jsonrpc":"2.0","id":ID}`, as the TypeScript
 *   SDK writes it, or `{"jsonrpc":"2.0","id":ID,"result":R}`) is parsed by parsing R alone, and R's
 *   text is kept with the parsed result (`codecs/json-text.ts`): the caller's reply and the tool
 *   log copy that text instead of serialising the result again.
 */
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { jsonIdToken as idToken, keepJsonText, stringifyRequest } from '../codecs/json-text.js';

/** The longest unfinished line kept while waiting for its newline, bytes (the SDK's limit). */
export const DEFAULT_MAX_LINE_BYTES = 10 * 1024 * 1024;

const NEWLINE = 0x0a;
/** The most characters of a bad line quoted in its error. */
const EXCERPT_CHARS = 120;

/**
 * An unfinished line grew past the decoder's limit: the stream is out of step and ends (the
 * message keeps the SDK's wording, `ReadBuffer exceeded maximum size of N bytes`).
 */
export class LineOverflowError extends Error {
  constructor(readonly maxLineBytes: number) {
    super(`ReadBuffer exceeded maximum size of ${maxLineBytes} bytes`);
    this.name = 'LineOverflowError';
  }
}

/** Receives what {@link JsonRpcLineDecoder.push} decodes, in stream order. */
export interface DecodedLineSink {
  /** A valid JSON-RPC message. */
  message(message: JSONRPCMessage): void;
  /** A line that is not a JSON-RPC message (its error names why and quotes the line's start). */
  invalid(error: Error): void;
  /**
   * An unfinished line grew past the limit: `ReadBuffer exceeded maximum size of N bytes` (the
   * SDK's wording). What was held is dropped and the rest of the chunk ignored: the stream is out
   * of step, and the caller should end it.
   */
  overflow(error: LineOverflowError): void;
}

/**
 * Why `value` is not a JSON-RPC 2.0 message of a shape MCP uses, or undefined when it is one:
 * `jsonrpc` is `"2.0"`; a request has a string or safe-integer (|n| < 2^53) `id` and a string `method`; a
 * notification a `method` and no `id`; a result response an `id` and an object `result`; an error
 * response an `error` object with a safe-integer `code` and a string `message` (its `id` may be absent);
 * `params` is an object when present; no other top-level member.
 */
export function jsonRpcShapeProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const m = value as Record<string, unknown>;
  if (m['jsonrpc'] !== '2.0') return '"jsonrpc" is not "2.0"';
  const id = m['id'];
  if (id !== undefined && typeof id !== 'string' && !Number.isSafeInteger(id)) return '"id" is not a string or a safe integer';
  const method = m['method'];
  let allowed: number;
  if (method !== undefined) {
    if (typeof method !== 'string') return '"method" is not a string';
    const params = m['params'];
    if (params !== undefined && !isPlainObject(params)) return '"params" is not an object';
    allowed = 2 + (id !== undefined ? 1 : 0) + (params !== undefined ? 1 : 0);
  } else if (m['result'] !== undefined) {
    if (id === undefined) return 'a result without "id"';
    if (!isPlainObject(m['result'])) return '"result" is not an object';
    allowed = 3;
  } else if (m['error'] !== undefined) {
    const error = m['error'];
    if (!isPlainObject(error) || !Number.isSafeInteger(error['code']) || typeof error['message'] !== 'string') return '"error" is not an object with a safe-integer "code" and a string "message"';
    allowed = 2 + (id !== undefined ? 1 : 0);
  } else {
    return 'neither "method", "result" nor "error"';
  }
  // the members counted above are the only ones a message may have (the SDK's schemas are
  // strict); `JSON.parse` output has own members only, none undefined
  let count = 0;
  for (const _key in m) count++;
  return count === allowed ? undefined : 'unexpected members besides "jsonrpc", "id", "method", "params", "result", "error"';
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parses one line (without its newline; a trailing `\r` is dropped) into a JSON-RPC message.
 * @throws Error `invalid JSON-RPC line from stdout (<reason>): <the line's first 120 characters>`
 *   for text that is not JSON or not a JSON-RPC 2.0 message.
 */
export function parseJsonRpcLine(line: string): JSONRPCMessage {
  const text = line.charCodeAt(line.length - 1) === 13 ? line.slice(0, -1) : line;
  const response = parseResultResponse(text);
  if (response !== undefined) return response;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw lineError(err instanceof Error ? err.message : String(err), text);
  }
  const problem = jsonRpcShapeProblem(value);
  if (problem !== undefined) throw lineError(problem, text);
  return value as JSONRPCMessage;
}

/** The members before a result in the SDK's responses, `{result, jsonrpc, id}` (TypeScript SDK). */
const RESULT_FIRST = '{"result":{';
const RESULT_FIRST_TAIL = ',"jsonrpc":"2.0","id":';
/** The members before a result in `{jsonrpc, id, result}` responses (the order of the JSON-RPC specification's examples). */
const ENVELOPE_FIRST = '{"jsonrpc":"2.0","id":';
const ENVELOPE_FIRST_RESULT = ',"result":{';

/**
 * A result response written compactly in either common member order — `{"result":R,"jsonrpc":"2.0","id":ID}`
 * or `{"jsonrpc":"2.0","id":ID,"result":R}`, R an object, ID a safe integer or a string without
 * escapes — parsed by parsing R alone, with R's text kept for the writers that copy it
 * (`codecs/json-text.ts`); undefined for any other line (which the caller parses whole). R parses
 * as exactly one JSON value and ID is one token, so the line is the JSON object of those three
 * members: the same message, and the same errors, as parsing the whole line.
 */
function parseResultResponse(text: string): JSONRPCMessage | undefined {
  if (text.charCodeAt(text.length - 1) !== 0x7d) return undefined; // }
  let resultText: string;
  let id: string | number | undefined;
  let resultFirst: boolean;
  if (text.startsWith(RESULT_FIRST)) {
    const tail = text.lastIndexOf(RESULT_FIRST_TAIL);
    if (tail === -1) return undefined;
    id = idToken(text, tail + RESULT_FIRST_TAIL.length, text.length - 1);
    resultText = text.slice(RESULT_FIRST.length - 1, tail);
    resultFirst = true;
  } else if (text.startsWith(ENVELOPE_FIRST)) {
    const at = text.indexOf(ENVELOPE_FIRST_RESULT, ENVELOPE_FIRST.length);
    if (at === -1) return undefined;
    id = idToken(text, ENVELOPE_FIRST.length, at);
    resultText = text.slice(at + ENVELOPE_FIRST_RESULT.length - 1, -1);
    resultFirst = false;
  } else {
    return undefined;
  }
  if (id === undefined) return undefined;
  let result: unknown;
  try {
    result = JSON.parse(resultText);
  } catch {
    // not R alone: the whole line says what is wrong
    return undefined;
  }
  // R begins with `{` and parsed: a JSON object. Its text is kept unless it holds a CR as
  // whitespace between tokens (JSON strings cannot hold one unescaped): SSE ends a line there
  if (resultText.indexOf('\r') === -1) keepJsonText(result as object, resultText);
  const message = resultFirst ? { result, jsonrpc: '2.0', id } : { jsonrpc: '2.0', id, result };
  return message as JSONRPCMessage;
}

function lineError(reason: string, line: string): Error {
  const excerpt = line.length > EXCERPT_CHARS ? `${line.slice(0, EXCERPT_CHARS)}…` : line;
  return new Error(`invalid JSON-RPC line from stdout (${reason}): ${JSON.stringify(excerpt)}`);
}

/**
 * Splits a byte stream into lines and parses each into a JSON-RPC message (see the module
 * comment). One decoder per stream; not reentrant across streams.
 */
export class JsonRpcLineDecoder {
  /** Parts of the unfinished line (copies), oldest first. */
  private parts: Buffer[] = [];
  private partBytes = 0;

  /** @param maxLineBytes the longest unfinished line kept, bytes ({@link DEFAULT_MAX_LINE_BYTES}). */
  constructor(private readonly maxLineBytes = DEFAULT_MAX_LINE_BYTES) {}

  /** Bytes of the unfinished line held. */
  get bufferedBytes(): number {
    return this.partBytes;
  }

  /**
   * Decodes `chunk`: each line it completes goes to `sink` (a message or an invalid line), in
   * order; the rest waits for the next chunk. An unfinished line past the limit goes to
   * `sink.overflow` (lines completed earlier in the chunk were delivered). What `sink` throws
   * propagates (the decoder stays consistent only for lines not yet delivered).
   */
  push(chunk: Buffer, sink: DecodedLineSink): void {
    const first = chunk.indexOf(NEWLINE);
    if (first === -1) {
      this.hold(chunk, 0, sink);
      return;
    }
    let start = 0;
    if (this.partBytes > 0) {
      // the line begun by earlier chunks ends here
      if (this.partBytes + first > this.maxLineBytes) {
        this.overflow(sink);
        return;
      }
      this.parts.push(chunk.subarray(0, first));
      const whole = Buffer.concat(this.parts, this.partBytes + first);
      this.parts = [];
      this.partBytes = 0;
      deliverLine(whole.toString('utf8'), sink);
      start = first + 1;
    }
    const last = chunk.lastIndexOf(NEWLINE);
    if (last >= start) {
      // every complete line of the chunk, converted at once
      const text = chunk.toString('utf8', start, last);
      let from = 0;
      for (;;) {
        const nl = text.indexOf('\n', from);
        if (nl === -1) {
          deliverLine(from === 0 ? text : text.slice(from), sink);
          break;
        }
        deliverLine(text.slice(from, nl), sink);
        from = nl + 1;
      }
    }
    if (last + 1 < chunk.length) this.hold(chunk, last + 1, sink);
  }

  /** Drops the unfinished line. */
  clear(): void {
    this.parts = [];
    this.partBytes = 0;
  }

  /** Keeps `chunk[from..]` (a copy) as part of the unfinished line. */
  private hold(chunk: Buffer, from: number, sink: DecodedLineSink): void {
    const bytes = chunk.length - from;
    if (this.partBytes + bytes > this.maxLineBytes) {
      this.overflow(sink);
      return;
    }
    this.parts.push(Buffer.from(chunk.subarray(from)));
    this.partBytes += bytes;
  }

  private overflow(sink: DecodedLineSink): void {
    this.clear();
    sink.overflow(new LineOverflowError(this.maxLineBytes));
  }
}

function deliverLine(line: string, sink: DecodedLineSink): void {
  let message: JSONRPCMessage;
  try {
    message = parseJsonRpcLine(line);
  } catch (err) {
    sink.invalid(err as Error);
    return;
  }
  sink.message(message);
}

/**
 * Encodes messages for the subprocess's stdin: one JSON text per message, each followed by a
 * newline (`JSON.stringify` escapes newlines inside strings, so none can split a message). A
 * request whose arguments kept the client's JSON text copies that text (`stringifyRequest`; kept
 * only when it holds no line break).
 * @throws TypeError what `JSON.stringify` throws (a cycle, a BigInt).
 */
export function encodeJsonRpcLine(message: JSONRPCMessage): string {
  return `${stringifyRequest(message)}\n`;
}
