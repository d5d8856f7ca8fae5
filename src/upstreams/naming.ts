/**
 * Downstream names of upstream tools and prompts: `prefix + name`, prefix defaulting to
 * `clientName-` (Bifrost's `clientName-toolName` namespacing).
 *
 * MCP clients reject tool names longer than 64 characters, so a longer name is shortened
 * deterministically: its first 55 characters, `_`, and 8 hex digits of the SHA-256 of the full
 * name — the same input always gives the same 64-character name, which still routes.
 */
import { createHash } from 'node:crypto';

/** Longest downstream tool name clients accept. */
export const MAX_TOOL_NAME_LENGTH = 64;

/** The prefix a client's tools get downstream. */
export function toolPrefixFor(clientName: string, toolPrefix: string | undefined): string {
  return toolPrefix ?? `${clientName}-`;
}

/** `prefix + name`, shortened to {@link MAX_TOOL_NAME_LENGTH} as described above. */
export function namespacedName(prefix: string, name: string): string {
  const full = prefix + name;
  if (full.length <= MAX_TOOL_NAME_LENGTH) return full;
  const hash = createHash('sha256').update(full).digest('hex').slice(0, 8);
  return `${full.slice(0, MAX_TOOL_NAME_LENGTH - 9)}_${hash}`;
}

/**
 * Whether `tools_to_execute` allows `tool`: `undefined` or `["*"]` → all, `[]` → none,
 * otherwise exact membership.
 */
export function isToolAllowed(toolsToExecute: readonly string[] | undefined, tool: string): boolean {
  if (toolsToExecute === undefined) return true;
  if (toolsToExecute.includes('*')) return true;
  return toolsToExecute.includes(tool);
}
