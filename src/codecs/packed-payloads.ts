/**
 * MessagePack already written for a payload object, found again by the object's identity: the
 * tool log packs a tool call's result into its record before the reply goes out (the reply waits
 * for the record to be durable), and an MCPW reply carries that same result object as its payload,
 * in the same standard MessagePack (https://github.com/msgpack/msgpack/blob/master/spec.md). The
 * reply reuses the record's bytes instead of packing the result a second time.
 *
 * Only bytes that are exactly what {@link packPlain} (and so msgpackr, with the MCPW options)
 * writes for the value may be remembered, and only for a value nobody changes afterwards (a tool
 * result is not changed once the upstream has answered). Entries are held weakly: they go with
 * the object.
 */
const packed = new WeakMap<object, Uint8Array>();

/**
 * Remembers `bytes` as the MessagePack of `value` (see the module comment for what they must be).
 * `bytes` may be a view of a shared slab that is never written over; it is kept as given.
 */
export function rememberPacked(value: object, bytes: Uint8Array): void {
  packed.set(value, bytes);
}

/** The MessagePack remembered for `value` by {@link rememberPacked}, if any. */
export function packedOf(value: unknown): Uint8Array | undefined {
  return typeof value === 'object' && value !== null ? packed.get(value) : undefined;
}
