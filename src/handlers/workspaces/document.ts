/**
 * `SharedDocument`: the gateway's copy of one collaborative document, a Yjs `Y.Doc` (
 * "the server applies them to its copy"; developer-mesh `document.update`, "CRDT-based document
 * update"). Updates are Yjs v1 updates (`Y.encodeStateAsUpdate`, `doc.on('update')`); the merged
 * state is `Y.encodeStateAsUpdate(doc)`.
 *
 * Size accounting: encoding the state costs time proportional to the document (tens of ms for a
 * heavily edited MiB-sized text), so it is not done per update. {@link SharedDocument.sizeBytes}
 * is exact after each {@link SharedDocument.state} call (every persist, every `document.get`)
 * and, between those, the exact size plus the bytes of the updates applied since: an estimate
 * that merging only lowers, except for a few bytes per item a Yjs insert splits.
 */
import * as Y from 'yjs';
import { GatewayError } from '../../base/errors.js';

/** Transaction origin of updates applied by the gateway. */
export const GATEWAY_ORIGIN = 'tributary';

/**
 * Checks that `update` is a well-formed Yjs v1 update by decoding it completely without a
 * document (`Y.decodeUpdate`), so garbage never reaches a `Y.Doc` half-applied.
 * @throws GatewayError INVALID_PARAMS naming what the decoder found.
 */
export function checkUpdate(update: Uint8Array, field = 'changes'): void {
  try {
    Y.decodeUpdate(update);
  } catch (err) {
    throw new GatewayError('INVALID_PARAMS', `Invalid params: ${field} is not a Yjs update (v1 encoding): ${err instanceof Error ? err.message : String(err)}`, {
      field,
      bytes: update.byteLength,
    });
  }
}

/**
 * One document's CRDT state: apply checked updates ({@link SharedDocument.apply}), read the merged
 * state ({@link SharedDocument.state}). Not thread-safe; owned by one workspace of the hub.
 */
export class SharedDocument {
  #doc = new Y.Doc();
  /** `Y.encodeStateAsUpdate(#doc)` while no update came since; else undefined. */
  #encoded: Uint8Array | undefined;
  #sizeBytes: number;

  /**
   * @param id the document id.
   * @param state a merged state to start from (from the store); `undefined` for a new, empty document.
   * @throws what `Y.applyUpdate` throws for a corrupt stored state.
   */
  constructor(
    readonly id: string,
    state?: Uint8Array,
  ) {
    if (state !== undefined) Y.applyUpdate(this.#doc, state, GATEWAY_ORIGIN);
    this.#encoded = Y.encodeStateAsUpdate(this.#doc);
    this.#sizeBytes = this.#encoded.byteLength;
  }

  /** Size of the merged state, bytes: exact right after {@link state}, an estimate between (see the module doc). */
  get sizeBytes(): number {
    return this.#sizeBytes;
  }

  /** The merged state (`Y.encodeStateAsUpdate`), from which any client converges. Cached until the next update. */
  state(): Uint8Array {
    if (this.#encoded === undefined) {
      this.#encoded = Y.encodeStateAsUpdate(this.#doc);
      this.#sizeBytes = this.#encoded.byteLength;
    }
    return this.#encoded;
  }

  /** The state vector (`Y.encodeStateVector`): which updates the document has seen. */
  stateVector(): Uint8Array {
    return Y.encodeStateVector(this.#doc);
  }

  /**
   * Applies one Yjs v1 update after checking it ({@link checkUpdate}) and the size bound: when the
   * state plus the update could exceed `maxBytes`, the exact size is computed first; an update
   * that would take the document over `maxBytes` is refused and not applied.
   * @returns the (estimated) size afterwards, bytes.
   * @throws GatewayError INVALID_PARAMS for a malformed update (the document is unchanged), or one
   *   Yjs refuses while integrating; CONFLICT (`details.reason: "document_too_large"`) over the bound.
   */
  apply(update: Uint8Array, maxBytes: number): number {
    checkUpdate(update);
    if (this.#sizeBytes + update.byteLength > maxBytes) {
      const exact = this.state().byteLength;
      if (exact + update.byteLength > maxBytes) {
        throw new GatewayError(
          'CONFLICT',
          `Document ${this.id} would exceed ${maxBytes} bytes (workspaces.max_document_bytes): it has ${exact} bytes and the update ${update.byteLength}; the update was not applied`,
          { reason: 'document_too_large', document_id: this.id, size_bytes: exact, update_bytes: update.byteLength, max_document_bytes: maxBytes },
        );
      }
    }
    try {
      Y.applyUpdate(this.#doc, update, GATEWAY_ORIGIN);
    } catch (err) {
      // decodeUpdate accepted it, so this is rare; whatever Yjs integrated stays a valid CRDT state
      this.#encoded = undefined;
      throw new GatewayError('INVALID_PARAMS', `Invalid params: Yjs could not apply changes: ${err instanceof Error ? err.message : String(err)}`, {
        field: 'changes',
      });
    }
    this.#encoded = undefined;
    this.#sizeBytes += update.byteLength;
    return this.#sizeBytes;
  }

  /** Frees the Yjs document. */
  destroy(): void {
    this.#doc.destroy();
  }
}
