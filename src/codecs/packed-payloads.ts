/**
 * MessagePack already in hand for a payload object, found again by the object's identity
 * (standard MessagePack, https://github.com/msgpack/msgpack/blob/master/spec.md):
 *
 * - a tool call's result: the tool log packs it into its record before the reply goes out (the
 *   reply waits for the record to be durable), and an MCPW reply carries that same result object
 *   as its payload; the reply reuses the record's bytes ({@link rememberPacked}). Only bytes that
 *   are exactly what `packPlain` (and so msgpackr, with the MCPW options) writes for the value may
 *   be remembered there, and only for a value nobody changes afterwards (a tool result is not
 *   changed once the upstream has answered);
 * - an MCPW `tools/call`'s arguments: the frame carried them as MessagePack already, and the tool
 *   log keeps those bytes instead of packing the decoded object again ({@link rememberReceived}).
 *
 * Entries are held weakly: they go with the object.
 */
const packed = new WeakMap<object, Uint8Array>();

/**
 * Remembers `bytes` as the MessagePack of result `value` (see the module comment for what they must be).
 * `bytes` may be a view of a shared slab that is never written over; it is kept as given.
 */
export function rememberPacked(value: object, bytes: Uint8Array): void {
  packed.set(value, bytes);
}

/** The MessagePack remembered for `value` by {@link rememberPacked}, if any. */
export function packedOf(value: unknown): Uint8Array | undefined {
  return typeof value === 'object' && value !== null ? packed.get(value) : undefined;
}

const received = new WeakMap<object, Uint8Array>();

/**
 * Remembers `bytes` as the MessagePack a client sent for `value`, which was decoded from them (an
 * MCPW `tools/call`'s arguments): standard MessagePack of exactly that value, though not
 * necessarily in the smallest encoding. The tool log keeps these bytes for the call's arguments
 * instead of packing the object again; so it keeps the arguments as the client sent them.
 */
export function rememberReceived(value: object, bytes: Uint8Array): void {
  received.set(value, bytes);
}

/** The bytes remembered for `value` by {@link rememberReceived}, if any. */
export function receivedPackedOf(value: unknown): Uint8Array | undefined {
  return typeof value === 'object' && value !== null ? received.get(value) : undefined;
}
