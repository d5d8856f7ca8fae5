/**
 * The tool-log record: ONE LevelDB value per entry that serves both the range scans (filters and
 * statistics) and the full entry, so an entry costs one put (earlier layouts wrote a separate
 * summary under the same key in `toollog_sum`: two puts per entry). Payloads of more than
 * {@link INLINE_PAYLOAD_BYTES} together go to a second value under the same key in
 * `toollog_payload` (then an entry costs two puts, as before), so a scan's cost stays bounded by
 * about a kilobyte per entry whatever the payload sizes.
 *
 * Layout (all integers little-endian):
 *
 * ```
 * byte 0        0x03, the layout tag (a MessagePack positive fixint: never the first byte of an
 *               earlier entry, which is a MessagePack map or the codec's 0xc1 fix-up frame);
 *               0x02 for records of the previous layout, whose payloads are JSON text (below)
 * bytes 1..4    u32 S, then S bytes: the summary, MessagePack array
 *               [client, tool, ok (1|0), latency_ms, cost_usd, virtual_key|null, surface]
 * then          u32 D, then D bytes: the details, MessagePack array
 *               [id, timestamp (ISO-8601), error|null, trace_id|null,
 *                arguments_truncated (1|0), result_truncated (1|0), A, external (1|0)
 *                (, event)]
 *               `event` (schema version 3 on, records the event recorder writes): the call's
 *               `ToolInvocationCompleted`/`ToolInvocationFailed` event as stored and sent (a
 *               MessagePack map, no payloads): the event log reads the event from here
 * then          (external 0) the payloads:
 *               A bytes: the arguments, one MessagePack value, then
 *               the rest: the result, one MessagePack value
 *               (each as `capPayloadPacked` gives it: the value; or a bin holding its JSON text;
 *               or, when cut, a str holding the JSON prefix. Layout 0x02: the JSON text or the
 *               cut prefix, UTF-8)
 * ```
 * With external 1 the record ends after the details, and the `toollog_payload` value under the
 * same key holds the payloads as above (A bytes of arguments, then the result); schema version 5
 * on, `toollog_payload` is in the store's second database (see `tool-log.ts`).
 *
 * A scan decodes only the summary ({@link ToolLogSummary}); the details and the payload bytes are
 * read from LevelDB with the value but not decoded. The payloads are the MessagePack the cap
 * measured, copied in as bytes: one serialisation per payload. Values written by earlier
 * versions (a MessagePack map through the store codec) are read by {@link summaryOf} and
 * {@link entryOf} too.
 *
 * MessagePack: https://github.com/msgpack/msgpack/blob/master/spec.md
 */
import { Unpackr } from 'msgpackr';
import { unpackPayload } from './cap-payload.js';
import { decodeValue } from './codec.js';
import { MsgpackWriter } from './msgpack-writer.js';

/** Summary tuple: `[client, tool, ok (1 success / 0 error), latency_ms, cost_usd, virtual_key | null, surface]`. */
export type ToolLogSummary = readonly [string, string, 0 | 1, number, number, string | null, string];

/** What one record holds: the entry's fields, payloads as `capPayloadPacked` encodes them. */
export interface ToolLogRecordFields {
  readonly id: string;
  readonly client: string;
  readonly tool: string;
  /** The arguments as one MessagePack value (`capPayloadPacked`): a prefix of their JSON text when `arguments_truncated`. */
  readonly arguments: Uint8Array;
  readonly arguments_truncated: boolean;
  /** The result as one MessagePack value (`capPayloadPacked`): a prefix of its JSON text when `result_truncated`. */
  readonly result: Uint8Array;
  readonly result_truncated: boolean;
  readonly status: 'success' | 'error';
  readonly error?: string;
  readonly latency_ms: number;
  readonly cost_usd: number;
  readonly virtual_key?: string;
  readonly trace_id?: string;
  readonly surface: string;
  readonly timestamp: string;
  /** The tool event this entry records (as stored and sent, with `seq`): only the recorder's records carry it. */
  readonly event?: ToolEventRecord;
  /** Fields of `event` that are not stored (e.g. a live event's payloads, which the record keeps capped). */
  readonly eventLeaveOut?: ReadonlySet<string>;
}

/** A tool event as the event log stores and sends it (plain data, `seq`, no payloads). */
export type ToolEventRecord = Record<string, unknown> & { readonly seq: number };

/** Payload bytes (arguments + result, as stored) kept inside the record; more go to `toollog_payload`. */
export const INLINE_PAYLOAD_BYTES = 1024;

/** The layout tag of {@link encodeRecord}'s values. */
export const RECORD_TAG = 0x03;
/** The layout tag of the previous layout's records: the same, with payloads as JSON text (UTF-8). */
export const JSON_PAYLOAD_RECORD_TAG = 0x02;
const SUMMARY_AT = 5;

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** Writes every record's head, then its payloads: one slab, no intermediate packs. */
const writer = new MsgpackWriter();

/**
 * The bytes of one record, and of its payload value when the payloads do not fit inline: views
 * of a shared slab that later records are written after, never over (so they stay valid while
 * held; they pin the slab, 64 KiB, meanwhile). Standard MessagePack written by
 * {@link MsgpackWriter} (the same bytes msgpackr wrote, except that a `-0` stays `-0`), read by
 * {@link summaryOf}, {@link storedFieldsOf} and {@link eventOfRecord}. Throws what msgpackr
 * throws for an event field it cannot pack.
 */
export function encodeRecord(r: ToolLogRecordFields): { record: Uint8Array; payload?: Uint8Array } {
  const argsBytes = r.arguments.length;
  const resultBytes = r.result.length;
  const external = argsBytes + resultBytes > INLINE_PAYLOAD_BYTES;
  const w = writer;
  w.begin();
  try {
    w.byte(RECORD_TAG);
    const summary = w.openFrame();
    w.byte(0x97); // array of 7
    w.str(r.client);
    w.str(r.tool);
    w.byte(r.status === 'success' ? 1 : 0);
    w.num(r.latency_ms);
    w.num(r.cost_usd);
    if (r.virtual_key === undefined) w.nil();
    else w.str(r.virtual_key);
    w.str(r.surface);
    w.closeFrame(summary);
    const details = w.openFrame();
    w.byte(r.event === undefined ? 0x98 : 0x99); // array of 8 or 9
    w.str(r.id);
    w.str(r.timestamp);
    if (r.error === undefined) w.nil();
    else w.str(r.error);
    if (r.trace_id === undefined) w.nil();
    else w.str(r.trace_id);
    w.byte(r.arguments_truncated ? 1 : 0);
    w.byte(r.result_truncated ? 1 : 0);
    w.num(argsBytes);
    w.byte(external ? 1 : 0);
    if (r.event !== undefined) w.map(r.event, r.eventLeaveOut);
    w.closeFrame(details);
    if (!external) {
      w.raw(r.arguments);
      w.raw(r.result);
      return { record: w.end() };
    }
    const record = w.end();
    w.raw(r.arguments);
    w.raw(r.result);
    return { record, payload: w.end() };
  } catch (err) {
    w.begin();
    throw err;
  }
}

/** True when the record `view` keeps its payloads in `toollog_payload` (false for earlier layouts). */
export function hasExternalPayload(view: Uint8Array): boolean {
  if (!isRecord(view)) return false;
  const buf = buffer(view);
  const summary = framedArray(buf, 1, 7, 'summary');
  return framedArray(buf, summary.end, 8, 'details').items[7] === 1;
}

function buffer(view: Uint8Array): Buffer {
  return Buffer.isBuffer(view) ? view : Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

/** The MessagePack array of `min` or more items framed by a u32 length at `at`, and where it ends. */
function framedArray(view: Buffer, at: number, min: number, what: string): { items: unknown[]; end: number } {
  if (view.length < at + 4) throw new Error(`tool-log record: no room for its ${what}`);
  const end = at + 4 + view.readUInt32LE(at);
  if (end > view.length) throw new Error(`tool-log record: ${what} runs past the value`);
  const items: unknown = unpackr.unpack(view.subarray(at + 4, end));
  if (!Array.isArray(items) || items.length < min) throw new Error(`tool-log record: malformed ${what}`);
  return { items, end };
}

/** One tool-log entry as the repository returns it (payloads as values). */
export interface ToolLogEntry {
  /** Unique: the caller's (e.g. the call id) or, by default, the entry's time key `<epoch ms>-<seq><boot>`. */
  id: string;
  /** Upstream client name. */
  client: string;
  /** Upstream tool name. */
  tool: string;
  arguments: unknown;
  arguments_truncated: boolean;
  result: unknown;
  result_truncated: boolean;
  status: 'success' | 'error';
  error?: string;
  latency_ms: number;
  cost_usd: number;
  virtual_key?: string;
  /** OpenTelemetry trace id of the call, when it was traced. */
  trace_id?: string;
  /** The surface the call came in on: `mcp`, `rest`, `ws`, ... */
  surface: string;
  /** ISO-8601 UTC. */
  timestamp: string;
}

/**
 * An entry as earlier versions stored it (the store codec's MessagePack of the entry object; with
 * `payload_json: 1`, untruncated payloads are JSON text).
 */
export interface LegacyStoredEntry extends ToolLogEntry {
  payload_json?: 1;
}

/** True when `view` is a record, of this layout or the previous one (not an earlier version's entry). */
export function isRecord(view: Uint8Array): boolean {
  return view[0] === RECORD_TAG || view[0] === JSON_PAYLOAD_RECORD_TAG;
}

/**
 * The tool event a record carries (see the layout), or `undefined` for a record without one (a
 * model-provider call, or a record written before schema version 3). Throws an `Error` for a
 * malformed record.
 */
export function eventOfRecord(view: Uint8Array): ToolEventRecord | undefined {
  if (!isRecord(view)) return undefined;
  const buf = buffer(view);
  // the summary is not needed: skip it by its length
  if (buf.length < SUMMARY_AT) throw new Error('tool-log record: no room for its summary');
  const event = framedArray(buf, SUMMARY_AT + buf.readUInt32LE(1), 8, 'details').items[8];
  if (event === undefined) return undefined;
  if (typeof event !== 'object' || event === null || typeof (event as { seq?: unknown }).seq !== 'number') throw new Error('tool-log record: malformed event');
  return event as ToolEventRecord;
}

/** The summary of a stored value, either layout. Throws an `Error` for a malformed value. */
export function summaryOf(view: Uint8Array): ToolLogSummary {
  if (!isRecord(view)) {
    const e = decodeValue(view) as LegacyStoredEntry;
    return [e.client, e.tool, e.status === 'success' ? 1 : 0, e.latency_ms, e.cost_usd, e.virtual_key ?? null, e.surface];
  }
  return framedArray(buffer(view), 1, 7, 'summary').items as unknown as ToolLogSummary;
}

/** The payload fields of an entry: each payload (a value, or its JSON text) and whether it was cut. */
interface EntryPayloads {
  readonly arguments: unknown;
  readonly argumentsCut: boolean;
  readonly result: unknown;
  readonly resultCut: boolean;
}

/** Both payloads cut to nothing (`''`, flagged truncated): a record whose payload value is missing. */
const NO_PAYLOADS: EntryPayloads = { arguments: '', argumentsCut: true, result: '', resultCut: true };

/** The entry of a record from its summary, its details and its payloads (see {@link storedFieldsOf}). */
function entryOf(summary: unknown[], id: string, timestamp: string, error: string | null, traceId: string | null, p: EntryPayloads): LegacyStoredEntry {
  const [client, tool, ok, latency, cost, vk, surface] = summary as [string, string, number, number, number, string | null, string];
  const entry: LegacyStoredEntry = {
    id,
    client,
    tool,
    arguments: p.arguments,
    arguments_truncated: p.argumentsCut,
    result: p.result,
    result_truncated: p.resultCut,
    status: ok === 1 ? 'success' : 'error',
    latency_ms: latency,
    cost_usd: cost,
    surface,
    timestamp,
  };
  if (error !== null) entry.error = error;
  if (vk !== null) entry.virtual_key = vk;
  if (traceId !== null) entry.trace_id = traceId;
  return entry;
}

/**
 * The entry a stored value holds, any layout, with payloads as values, or as the JSON text they
 * are stored as in layout 0x02 records and `payload_json` entries (`payloadJson` tells which).
 * `payload`: the `toollog_payload` value of a record with external payloads; without it (the
 * value is missing: a crash between the record's write and its payload's, or retention deleting
 * both between two reads) both payloads read as cut to nothing: `''`, flagged truncated.
 * Throws an `Error` for a malformed value.
 */
export function storedFieldsOf(view: Uint8Array, payload?: Uint8Array): { entry: LegacyStoredEntry; payloadJson: boolean } {
  if (!isRecord(view)) {
    const e = decodeValue(view) as LegacyStoredEntry;
    return { entry: e, payloadJson: e.payload_json === 1 };
  }
  const buf = buffer(view);
  const summary = framedArray(buf, 1, 7, 'summary');
  const { items, end } = framedArray(buf, summary.end, 8, 'details');
  const [id, timestamp, error, traceId, argsCut, resultCut, argsBytes, external] = items as [
    string,
    string,
    string | null,
    string | null,
    number,
    number,
    number,
    number,
  ];
  let texts = buf;
  let at = end;
  if (external === 1) {
    if (payload === undefined) return { entry: entryOf(summary.items, id, timestamp, error, traceId, NO_PAYLOADS), payloadJson: false };
    texts = buffer(payload);
    at = 0;
  }
  if (!(Number.isInteger(argsBytes) && argsBytes >= 0 && at + argsBytes <= texts.length)) throw new Error('tool-log record: bad arguments length');
  const packed = view[0] === RECORD_TAG;
  const entry = entryOf(summary.items, id, timestamp, error, traceId, {
    arguments: packed ? unpackPayload(texts.subarray(at, at + argsBytes)) : texts.toString('utf8', at, at + argsBytes),
    argumentsCut: argsCut === 1,
    result: packed ? unpackPayload(texts.subarray(at + argsBytes)) : texts.toString('utf8', at + argsBytes),
    resultCut: resultCut === 1,
  });
  return { entry, payloadJson: !packed };
}
