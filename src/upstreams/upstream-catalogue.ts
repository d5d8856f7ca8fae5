/**
 * Loading an upstream's catalogue: every page of `tools/list`, `resources/list`,
 * `resources/templates/list` and `prompts/list`, for the kinds its server capabilities announce
 * (pagination: https://modelcontextprotocol.io/specification/2025-06-18/server/utilities/pagination).
 */
import type { ServerCapabilities } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from '../log/logger.js';
import type { Catalogue, CatalogueKind, JsonObject } from './upstream-types.js';

/** Sends one gateway control request (no breaker, no concurrency limit) and resolves with its result. */
export type ControlRequest = (method: string, params: JsonObject) => Promise<JsonObject>;

const MAX_LIST_PAGES = 1000;

/** Reads every page of `method` (up to 1000 pages, then logs a warning) and concatenates `field`. */
export async function listAll(request: ControlRequest, method: string, field: string, log: Logger): Promise<JsonObject[]> {
  const out: JsonObject[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_LIST_PAGES; page++) {
    const result = await request(method, cursor === undefined ? {} : { cursor });
    const items = result[field];
    if (Array.isArray(items)) {
      for (const item of items) if (typeof item === 'object' && item !== null) out.push(item as JsonObject);
    }
    const next = result['nextCursor'];
    if (typeof next !== 'string' || next === '') return out;
    cursor = next;
  }
  log.warn('list stopped at the page limit', { method, pages: MAX_LIST_PAGES });
  return out;
}

/**
 * Reloads the `kind` part of the catalogue object `catalogue()` returns when each list starts;
 * entries without their key field (`name`, `uri`,
 * `uriTemplate`) are dropped; a kind the server does not announce in `caps` becomes empty.
 */
export async function reloadCatalogue(
  catalogue: () => Catalogue,
  caps: ServerCapabilities,
  kind: CatalogueKind,
  request: ControlRequest,
  log: Logger,
): Promise<void> {
  switch (kind) {
    case 'tools':
      catalogue().tools = caps.tools ? (await listAll(request, 'tools/list', 'tools', log)).filter((t) => typeof t['name'] === 'string') : [];
      break;
    case 'resources':
      if (caps.resources) {
        catalogue().resources = (await listAll(request, 'resources/list', 'resources', log)).filter((r) => typeof r['uri'] === 'string');
        catalogue().resourceTemplates = (await listAll(request, 'resources/templates/list', 'resourceTemplates', log)).filter(
          (r) => typeof r['uriTemplate'] === 'string',
        );
      } else {
        catalogue().resources = [];
        catalogue().resourceTemplates = [];
      }
      break;
    case 'prompts':
      catalogue().prompts = caps.prompts ? (await listAll(request, 'prompts/list', 'prompts', log)).filter((p) => typeof p['name'] === 'string') : [];
      break;
  }
}
