/**
 * What an admitted request may use: the caller ({@link Principal}) and its tool filter. Computed by
 * the auth gate (`src/auth/gate.ts`), carried by every HTTP request and WebSocket of the gateway.
 */
import type { Principal } from './principal.js';

/** What a request may use. */
export interface ToolFilter {
  /** Whether tool `tool` (the upstream's own name) of client `client` may be listed and called. */
  allowsTool(client: string, tool: string): boolean;
  /** Whether anything of `client` may be used (its resources and prompts too). */
  allowsClient(client: string): boolean;
}

/** The caller and what it may use: attached to every admitted request and WebSocket. */
export interface RequestAuth {
  readonly principal: Principal;
  /** `undefined` = no narrowing (every tool the catalogue shows). */
  readonly filter: ToolFilter | undefined;
  /**
   * Where this decision came from, so a long-lived connection can re-check it against the
   * credential's current state (`AccessGate.revalidate`); absent when there is nothing that can
   * change (auth off, the Basic admin).
   */
  readonly source?: CredentialSource;
}

/** What {@link RequestAuth} was computed from, and at which versions of the key and policy state. */
export interface CredentialSource {
  /** The gateway-issued key presented (API key or virtual key), if any. */
  readonly key: { readonly kind: 'api_key' | 'virtual_key'; readonly id: string } | undefined;
  /** When the credential stops being valid, epoch ms (`Infinity` = never). */
  readonly expiresMs: number;
  /** The include headers' filter of the request that opened the connection. */
  readonly headerFilter: ToolFilter | undefined;
  /** `KeyRegistry.version` when checked. */
  readonly keysVersion: number;
  /** {@link VirtualKeyAccess.version} when checked. */
  readonly vkVersion: number;
}
