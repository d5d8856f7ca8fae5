/**
 * Which tools a request may see and call, as the Bifrost MCP filtering rules say
 * (https://github.com/maximhq/bifrost/blob/main/docs/openapi/schemas/management/mcp.yaml, "allow_on_all_virtual_keys" and `vk_configs`; Bifrost docs
 * "Tool Filtering"): the filters stack and a tool must pass all of them.
 *
 * 1. The client's own `tools_to_execute` (applied by the upstream manager: hidden tools are not in
 *    the catalogue at all).
 * 2. Virtual keys: a key with an explicit `vk_configs` entry for a client gets exactly that
 *    entry's `tools_to_execute` (`["*"]` all, `[]` none); otherwise `allow_on_all_virtual_keys`
 *    gives all of the client's tools; otherwise none.
 * 3. Request headers `x-bf-mcp-include-clients: a,b` and `x-bf-mcp-include-tools:
 *    client-tool,client/tool,client-*` narrow further, never widen.
 *
 * Names in filters are the client's name and the upstream's own tool name (before the gateway's
 * `client-` prefix). Resources and prompts follow the client level: a request may use them only
 * from clients it may use some tool of.
 */
import type { ToolFilter } from '../base/access.js';

/** The virtual-key part of one client's management record. */
export interface VkClientPolicy {
  readonly name: string;
  readonly allowOnAllVirtualKeys: boolean;
  readonly vkConfigs: readonly { readonly virtual_key_id: string; readonly tools_to_execute: readonly string[] }[];
}

/** Per-client allowance of one filter: every tool, a set of tools, or nothing. */
type Allowance = '*' | ReadonlySet<string>;

class AllowanceFilter implements ToolFilter {
  constructor(private readonly byClient: ReadonlyMap<string, Allowance>) {}

  allowsTool(client: string, tool: string): boolean {
    const a = this.byClient.get(client);
    return a !== undefined && (a === '*' || a.has(tool));
  }

  allowsClient(client: string): boolean {
    const a = this.byClient.get(client);
    return a !== undefined && (a === '*' || a.size > 0);
  }
}

function allowance(tools: readonly string[]): Allowance | undefined {
  if (tools.includes('*')) return '*';
  return tools.length === 0 ? undefined : new Set(tools);
}

/**
 * Tool access of virtual keys, computed from the client records and cached per key until
 * {@link VirtualKeyAccess.invalidate} (called whenever a client record changes).
 */
export class VirtualKeyAccess {
  private cache = new Map<string, ToolFilter>();
  #version = 0;

  /** @param policies the current client records (name, allow_on_all_virtual_keys, vk_configs). */
  constructor(private readonly policies: () => Iterable<VkClientPolicy>) {}

  /** Drops cached filters: the next request of each key recomputes from the records. */
  invalidate(): void {
    this.cache = new Map();
    this.#version++;
  }

  /** Bumped by every {@link invalidate}: filters computed at an older version may be stale. */
  get version(): number {
    return this.#version;
  }

  /** The filter of virtual key `vkId` (see the module comment for the rules). */
  forKey(vkId: string): ToolFilter {
    let f = this.cache.get(vkId);
    if (!f) {
      const byClient = new Map<string, Allowance>();
      for (const p of this.policies()) {
        const explicit = p.vkConfigs.find((v) => v.virtual_key_id === vkId);
        const a = explicit ? allowance(explicit.tools_to_execute) : p.allowOnAllVirtualKeys ? '*' : undefined;
        if (a !== undefined) byClient.set(p.name, a);
      }
      f = new AllowanceFilter(byClient);
      this.cache.set(vkId, f);
    }
    return f;
  }
}

function splitList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/**
 * The filter of the `x-bf-mcp-include-clients` and `x-bf-mcp-include-tools` headers (values as
 * received, `''` when absent), or `undefined` when neither is given. Tool entries are
 * `client-tool`, `client/tool`, or `client-*` / `client/*` for all of a client's tools; an entry
 * with no separator names a whole client. Both headers given: a tool must pass both.
 * Note: uWS reports an empty header like a missing one, so an empty value does not mean "none".
 */
export function includeFilter(clientsHeader: string, toolsHeader: string): ToolFilter | undefined {
  if (clientsHeader === '' && toolsHeader === '') return undefined;
  const clients = clientsHeader === '' ? undefined : new Set(splitList(clientsHeader));
  const tools = toolsHeader === '' ? undefined : splitList(toolsHeader);
  return {
    allowsTool: (client, tool) => {
      if (clients && !clients.has(client)) return false;
      if (!tools) return true;
      for (const entry of tools) {
        if (entry === client || entry === `${client}-*` || entry === `${client}/*`) return true;
        if (entry === `${client}-${tool}` || entry === `${client}/${tool}`) return true;
      }
      return false;
    },
    allowsClient: (client) => {
      if (clients && !clients.has(client)) return false;
      if (!tools) return true;
      return tools.some((e) => e === client || e.startsWith(`${client}-`) || e.startsWith(`${client}/`));
    },
  };
}

/** Both filters at once (either may be absent); `undefined` when neither narrows. */
export function bothFilters(a: ToolFilter | undefined, b: ToolFilter | undefined): ToolFilter | undefined {
  if (!a) return b;
  if (!b) return a;
  return {
    allowsTool: (c, t) => a.allowsTool(c, t) && b.allowsTool(c, t),
    allowsClient: (c) => a.allowsClient(c) && b.allowsClient(c),
  };
}
