/**
 * The MCPW frame layout (see `./mcpw.ts` for the format and its source): constants, type, method
 * and flag codes, and the shapes of frames, headers and codec options.
 */
import type { KeyObject } from 'node:crypto';
import type { McpwDecodeError } from './mcpw-errors.js';
import type { McpwScratch } from './mcpw-msgpack.js';

/** The magic number at offset 0: ASCII "MCPW". */
export const MCPW_MAGIC = 0x4d435057;
/** The only protocol version this codec reads and writes. */
export const MCPW_VERSION = 0x01;
/** Size of the fixed header, bytes. */
export const MCPW_HEADER_BYTES = 24;
/** Default limit for both the payload on the wire and the inflated payload: 16 MiB. */
export const MCPW_DEFAULT_MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;
/** Default gzip threshold of {@link encodeFrame}: payloads over 1 KiB. */
export const MCPW_DEFAULT_GZIP_THRESHOLD = 1024;

/** Frame type codes (header offset 5). */
export const McpwType = {
  Request: 0x01,
  Response: 0x02,
  Notification: 0x03,
  Error: 0x04,
  Ping: 0x05,
  Pong: 0x06,
  Close: 0x07,
} as const;
/** A frame type code, 1–7. */
export type McpwType = (typeof McpwType)[keyof typeof McpwType];

/** Method codes (header offset 6). JSON-RPC names for them are in `./mcpw-jsonrpc.ts`. */
export const McpwMethod = {
  Generic: 0x0000,
  Initialize: 0x0001,
  ToolsList: 0x0002,
  ToolsCall: 0x0003,
  ContextGet: 0x0004,
  ContextSet: 0x0005,
  LogMessage: 0x0006,
} as const;
/** A method code, 0–6. */
export type McpwMethod = (typeof McpwMethod)[keyof typeof McpwMethod];

/** Flag bits (header offset 8); bits 2–7 are reserved and must be 0. */
export const McpwFlags = { Gzip: 0x01, Encrypted: 0x02 } as const;
/** The flag bits this codec knows. */
export const KNOWN_FLAGS = McpwFlags.Gzip | McpwFlags.Encrypted;

/** A frame to encode: header fields and the payload value (`undefined` = zero-length payload). */
export interface McpwFrame {
  readonly type: McpwType;
  readonly method: McpwMethod;
  /** uint64, 0 … 2^64 − 1. */
  readonly requestId: bigint;
  /** Any value msgpackr packs; JSON-RPC params / result / error object, or the whole message for method 0000. */
  readonly payload: unknown;
}

/** The fixed header as read from the wire, after validation. */
export interface McpwHeader {
  readonly type: McpwType;
  readonly method: McpwMethod;
  /** Flag byte: {@link McpwFlags} bits, reserved bits already checked to be 0. */
  readonly flags: number;
  /** Payload length on the wire, bytes (before decryption and inflation). */
  readonly payloadLength: number;
  readonly requestId: bigint;
}

/** A decoded frame: the header plus the unpacked payload. */
export interface McpwDecodedFrame extends McpwHeader {
  /**
   * The unpacked payload (`undefined` for a zero-length payload). Plain JS values, safe to keep —
   * except MessagePack `bin` values: those come back as `Uint8Array` views into the frame's own
   * bytes (no copy) when the payload was neither compressed nor encrypted, so they are valid only
   * inside the uWS message callback (uWS frees the `ArrayBuffer` when it returns). Pass
   * `copyBinary: true`, or copy them, to keep them longer.
   */
  readonly payload: unknown;
}

/** `decodeFrame`'s result; it never throws. */
export type McpwDecodeResult = { readonly ok: true; readonly frame: McpwDecodedFrame } | { readonly ok: false; readonly error: McpwDecodeError };

/** `decodeHeader`'s result; it never throws. */
export type McpwHeaderResult = { readonly ok: true; readonly header: McpwHeader } | { readonly ok: false; readonly error: McpwDecodeError };

/** An AES-256-GCM key for the encrypted flag; build it with {@link createMcpwKey}. */
export interface McpwKey {
  readonly algorithm: 'aes-256-gcm';
  readonly secret: KeyObject;
}

/** Options of {@link decodeFrame} and {@link decodeHeader}. */
export interface McpwDecodeOptions {
  /** Largest payload length accepted on the wire, bytes; larger → `payload_too_large`. Default 16 MiB. */
  readonly maxPayloadBytes?: number;
  /** Largest inflated size of a gzip payload, bytes; larger → `gzip_bomb`, detected without inflating further. Default 16 MiB. */
  readonly maxInflatedBytes?: number;
  /** Key for frames with the encrypted flag; without it they fail with `encrypted_without_key`. */
  readonly key?: McpwKey;
  /** Copy MessagePack `bin` values out of the frame instead of returning views into it. Default `false`. */
  readonly copyBinary?: boolean;
  /**
   * Most nested maps/arrays, counted from the JSON-RPC message: a method-0000 payload is the
   * message itself, a compact payload (`params`/`result`/`error`) sits one level below it, so it
   * may nest one level less. Deeper → `nesting_too_deep`. Default {@link MAX_NESTING_DEPTH} (128).
   */
  readonly maxDepth?: number;
}

/** Options of {@link encodeFrame}. */
export interface McpwEncodeOptions {
  /** gzip payloads whose MessagePack is over `gzipThreshold` bytes. Default `false`. */
  readonly gzip?: boolean;
  /** Bytes of MessagePack above which `gzip: true` compresses. Default 1024. */
  readonly gzipThreshold?: number;
  /** zlib level 0–9 (speed vs size). Default 1: replies are compressed on the hot path. */
  readonly gzipLevel?: number;
  /** Encrypt every non-empty payload with this key (sets flag bit1). */
  readonly key?: McpwKey;
  /**
   * Write the frame into this reused area instead of a slab that is never written over: the
   * result is then valid only until `scratch.reset()` (for frames handed to the socket first).
   */
  readonly scratch?: McpwScratch;
}

