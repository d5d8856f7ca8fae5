/**
 * Params of the collaboration methods on `/ws` (developer-mesh "Collaboration Messages", https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md): one io-ts codec per
 * message, decoded once at the boundary by {@link decodeParams}; inside, plain types.
 *
 * Binary values (`changes`) arrive as a base64 string in JSON text frames and as raw bytes
 * (`Uint8Array`, msgpack `bin`) in MCPW frames; the codecs accept both and leave the base64
 * decoding to `./bytes.ts`, which names the problem precisely.
 */
import * as t from 'io-ts';
import { isLeft } from 'fp-ts/lib/Either.js';
import { GatewayError } from '../../base/errors.js';
import { formatIoTsErrors } from '../../base/io-ts-errors.js';
import { unknownFields } from '../../base/unknown-fields.js';
import { withSchema } from '../../codecs/schema.js';
import { PositiveInt } from '../../config/schema.js';

/** Whether `s` is a workspace or document id: 1–256 UTF-16 units, no control characters (ids form LevelDB keys). */
export function isId(s: string): boolean {
  if (s.length < 1 || s.length > 256) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return false;
  }
  return true;
}

export interface WorkspaceIdBrand {
  readonly WorkspaceId: unique symbol;
}
/** A workspace id, unique within a tenant. */
export const WorkspaceId = withSchema(
  t.brand(t.string, (s): s is t.Branded<string, WorkspaceIdBrand> => isId(s), 'WorkspaceId'),
  { description: 'Workspace id: 1–256 characters, no control characters', minLength: 1, maxLength: 256 },
);
/** A decoded {@link WorkspaceId}. */
export type WorkspaceId = t.TypeOf<typeof WorkspaceId>;

export interface DocumentIdBrand {
  readonly DocumentId: unique symbol;
}
/** A document id, unique within a workspace. */
export const DocumentId = withSchema(
  t.brand(t.string, (s): s is t.Branded<string, DocumentIdBrand> => isId(s), 'DocumentId'),
  { description: 'Document id: 1–256 characters, no control characters', minLength: 1, maxLength: 256 },
);
/** A decoded {@link DocumentId}. */
export type DocumentId = t.TypeOf<typeof DocumentId>;

/** Raw bytes as msgpack decodes them from an MCPW payload (`Uint8Array` or Node `Buffer`). */
export const RawBytes = new t.Type<Uint8Array, Uint8Array, unknown>(
  'bytes',
  (u): u is Uint8Array => u instanceof Uint8Array,
  (u, c) => (u instanceof Uint8Array ? t.success(u) : t.failure(u, c)),
  t.identity,
);

/** A binary value on the wire: base64 (RFC 4648 §4, padded) in JSON frames, raw bytes in MCPW frames. */
export const WireBytes = withSchema(t.union([t.string, RawBytes], 'base64 string or bytes'), {
  description: 'base64 (RFC 4648 §4, padded) in JSON text frames; raw bytes (msgpack bin) in MCPW frames',
});
/** A decoded {@link WireBytes}: base64 text or raw bytes. */
export type WireBytes = t.TypeOf<typeof WireBytes>;

/** How a reply carries binary values: `bytes` (MCPW peers' default) or `base64` (JSON peers' default). */
export const BytesEncoding = t.keyof({ base64: null, bytes: null }, 'BytesEncoding');
/** A decoded {@link BytesEncoding}. */
export type BytesEncoding = t.TypeOf<typeof BytesEncoding>;

/** A member's display name: 1–128 characters. */
export const MemberName = t.brand(
  t.string,
  (s): s is t.Branded<string, { readonly MemberName: unique symbol }> => s.length >= 1 && s.length <= 128,
  'MemberName',
);

/** `workspace.join` {workspace_id, name?, include_state?, encoding?}. */
export const JoinParams = t.exact(
  t.intersection([
    t.type({ workspace_id: WorkspaceId }),
    t.partial({
      /** Shown to the other members (default: the caller's principal name, else its member id). */
      name: MemberName,
      /** Put each document's full state (`state`) into the reply's `documents` list (default false). */
      include_state: t.boolean,
      encoding: BytesEncoding,
    }),
  ]),
);
/** Decoded {@link JoinParams}. */
export type JoinParams = t.TypeOf<typeof JoinParams>;

/** `workspace.leave` {workspace_id}. */
export const LeaveParams = t.exact(t.type({ workspace_id: WorkspaceId }));
/** Decoded {@link LeaveParams}. */
export type LeaveParams = t.TypeOf<typeof LeaveParams>;

/** `document.update` {workspace_id, document_id, changes}: `changes` is a Yjs v1 update. */
export const UpdateParams = t.exact(t.type({ workspace_id: WorkspaceId, document_id: DocumentId, changes: WireBytes }));
/** Decoded {@link UpdateParams}. */
export type UpdateParams = t.TypeOf<typeof UpdateParams>;

/** `document.get` {workspace_id, document_id, encoding?}. */
export const GetParams = t.exact(
  t.intersection([t.type({ workspace_id: WorkspaceId, document_id: DocumentId }), t.partial({ encoding: BytesEncoding })]),
);
/** Decoded {@link GetParams}. */
export type GetParams = t.TypeOf<typeof GetParams>;

/** `document.lock` {workspace_id, document_id, ttl_ms?}: `ttl_ms` is capped at `workspaces.lock_ttl_ms`. */
export const LockParams = t.exact(
  t.intersection([t.type({ workspace_id: WorkspaceId, document_id: DocumentId }), t.partial({ ttl_ms: PositiveInt })]),
);
/** Decoded {@link LockParams}. */
export type LockParams = t.TypeOf<typeof LockParams>;

/** `document.unlock` {workspace_id, document_id}. */
export const UnlockParams = t.exact(t.type({ workspace_id: WorkspaceId, document_id: DocumentId }));
/** Decoded {@link UnlockParams}. */
export type UnlockParams = t.TypeOf<typeof UnlockParams>;

/** Any JSON value but `undefined`/`null` (a cursor position, a selection). */
const Present = new t.Type<unknown, unknown, unknown>(
  'value',
  (u): u is unknown => u !== undefined && u !== null,
  (u, c) => (u !== undefined && u !== null ? t.success(u) : t.failure(u, c)),
  t.identity,
);

/** `cursor.position` {workspace_id, document_id?, position}; `position` is opaque to the gateway. */
export const CursorParams = t.exact(
  t.intersection([t.type({ workspace_id: WorkspaceId, position: Present }), t.partial({ document_id: DocumentId })]),
);
/** Decoded {@link CursorParams}. */
export type CursorParams = t.TypeOf<typeof CursorParams>;

/** `selection.change` {workspace_id, document_id?, selection}; `selection` is opaque to the gateway. */
export const SelectionParams = t.exact(
  t.intersection([t.type({ workspace_id: WorkspaceId, selection: Present }), t.partial({ document_id: DocumentId })]),
);
/** Decoded {@link SelectionParams}. */
export type SelectionParams = t.TypeOf<typeof SelectionParams>;

/**
 * Decodes the params of `method` with `codec`, refusing unknown fields (a typo such as `doc_id`
 * is an error, not silently ignored) except JSON-RPC/MCP's `_meta`, which is ignored.
 * @throws GatewayError INVALID_PARAMS (-32602) whose `details.problems` name every bad field by path.
 */
export function decodeParams<C extends t.Mixed>(codec: C, method: string, params: Record<string, unknown> | undefined): t.TypeOf<C> {
  const value = params ?? {};
  const r = codec.decode(value);
  const problems = isLeft(r) ? formatIoTsErrors(r.left, '(params)') : [];
  for (const problem of unknownFields(codec, value)) if (!problem.startsWith('_meta:')) problems.push(problem);
  if (problems.length > 0) {
    throw new GatewayError('INVALID_PARAMS', `Invalid params for ${method}: ${problems.join('; ')}`, { problems: [...new Set(problems)] });
  }
  return (r as { right: t.TypeOf<C> }).right;
}
