/**
 * Methods served on the agent WebSocket `/ws` besides MCP (developer-mesh `/ws`,
 * https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md): agent orchestration (`agent.*`, `task.*`) and collaborative
 * workspaces (`workspace.*`, `document.*`, `cursor.position`, `selection.change`). The `/ws`
 * endpoint routes a request or notification whose method a {@link WsMethodHost} handles to it, for
 * JSON text and MCPW binary frames alike, before (and without needing) an MCP `initialize`.
 */
import type { RequestAuth } from '../base/access.js';

/** One connection as a method host sees it. */
export interface WsPeer {
  /** Unique per connection (`peer-<n>`). */
  readonly id: string;
  /** The caller admitted at the upgrade (tenant, principal); `undefined` without an access gate. */
  readonly auth: RequestAuth | undefined;
  /**
   * Whether the peer speaks MCPW (has sent a binary frame): its notifications go as MCPW frames,
   * so `Uint8Array` values in params travel as raw bytes (msgpack) instead of needing base64.
   */
  readonly binary: boolean;
  /**
   * Sends a JSON-RPC notification `{jsonrpc:"2.0", method, params}`: an MCPW Notification frame
   * (method 0000, the whole message as payload) to binary peers, a text frame otherwise. Returns
   * false when the connection is closed or was closed for backpressure.
   */
  notify(method: string, params: Record<string, unknown>): boolean;
  /** Outbound bytes buffered and not yet written, bytes (skip or coalesce for slow peers). */
  bufferedAmount(): number;
  /**
   * When the peer last sent anything (any frame: MCP calls, MCPW Ping, method calls), epoch ms.
   * Liveness checks use it, so a peer busy with MCP or pinging counts as alive.
   */
  readonly lastMessageAt: number;
  readonly closed: boolean;
}

/** A family of `/ws` methods. */
export interface WsMethodHost {
  /** Whether this host serves `method`. */
  handles(method: string): boolean;
  /**
   * Handles one message: a request (resolve its `result`; reject with a GatewayError for a JSON-RPC
   * error) or, when `isNotification`, a notification (the result is ignored; errors are logged).
   */
  call(peer: WsPeer, method: string, params: Record<string, unknown> | undefined, isNotification: boolean): Promise<unknown>;
  /** The peer's connection closed (release what it held: locks, memberships, agent status). */
  closed(peer: WsPeer): void;
}
