/**
 * Tool search over the aggregated catalogue, as Anthropic's tool search tool offers it
 * (https://docs.claude.com/en/docs/agents-and-tools/tool-use/tool-search-tool): a BM25 variant
 * over names, titles, descriptions and parameter names (MiniSearch's BM25+ ranking,
 * https://lucaong.github.io/minisearch/), and a regular-expression variant. Regular expressions are
 * run with RE2JS (https://github.com/le0pard/re2js), whose matching time is linear in the input, so
 * a hostile pattern cannot stall the event loop with backtracking.
 *
 * One index is built per catalogue (the manager replaces its tool array on every change, so the
 * array identity is the version) and shared by every caller; each search is filtered by the
 * caller's access rules, so a caller never sees a tool it could not see in `full` mode.
 */
import MiniSearch from 'minisearch';
import { RE2JS } from 're2js';
import { GatewayError } from '../../base/errors.js';
import type { JsonObject } from '../../upstreams/upstream.js';

/** One search result: the downstream tool name, a one-line summary and the score (higher is better). */
export interface ToolHit {
  readonly name: string;
  readonly summary: string;
  readonly score: number;
}

/** Longest query or pattern accepted, characters. */
export const MAX_QUERY_CHARS = 500;

/** Longest one-line summary, characters. */
const SUMMARY_CHARS = 120;

interface IndexedTool {
  readonly id: number;
  readonly name: string;
  readonly nameWords: string;
  readonly title: string;
  readonly description: string;
  readonly params: string;
  readonly paramDocs: string;
}

/** `memory-create_entities` → `memory create entities`; `getUserId` → `get user id`. */
export function splitIdentifier(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/[-_./:]+/g, ' ')
    .toLowerCase();
}

/** The first sentence or line of a description, at most 120 characters. */
export function summaryOf(description: string): string {
  const text = description.trim();
  const stop = text.search(/\n|(?<=[.!?])\s/);
  const first = (stop < 0 ? text : text.slice(0, stop)).trim();
  return first.length > SUMMARY_CHARS ? `${first.slice(0, SUMMARY_CHARS - 1)}…` : first;
}

function properties(tool: JsonObject): Record<string, JsonObject> {
  const schema = tool['inputSchema'] as JsonObject | undefined;
  const props = schema?.['properties'];
  return typeof props === 'object' && props !== null && !Array.isArray(props) ? (props as Record<string, JsonObject>) : {};
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

export class ToolSearchIndex {
  private readonly search: MiniSearch<IndexedTool>;
  private readonly docs: IndexedTool[];

  constructor(readonly tools: readonly JsonObject[]) {
    this.docs = tools.map((t, id) => {
      const props = properties(t);
      const name = text(t['name']);
      return {
        id,
        name,
        nameWords: splitIdentifier(name),
        title: text(t['title']) || text((t['annotations'] as JsonObject | undefined)?.['title']),
        description: text(t['description']),
        params: Object.keys(props).map(splitIdentifier).join(' '),
        paramDocs: Object.values(props)
          .map((p) => text(p['description']))
          .join(' '),
      };
    });
    this.search = new MiniSearch<IndexedTool>({
      fields: ['nameWords', 'title', 'description', 'params', 'paramDocs'],
      searchOptions: {
        boost: { nameWords: 3, title: 2, description: 1, params: 1.5, paramDocs: 0.5 },
        prefix: (term) => term.length >= 3,
        fuzzy: (term) => (term.length >= 5 ? 0.2 : false),
        combineWith: 'OR',
      },
    });
    this.search.addAll(this.docs);
  }

  /**
   * BM25 search for `query` among the tools `allowed` lets through, best first, at most `limit`.
   * @throws GatewayError INVALID_PARAMS for an empty or over-long query.
   */
  bm25(query: string, allowed: (name: string) => boolean, limit: number): ToolHit[] {
    checkQuery(query, 'query');
    const hits: ToolHit[] = [];
    for (const r of this.search.search(query, { filter: (r) => allowed(this.docs[r.id as number]?.name ?? '') })) {
      const doc = this.docs[r.id as number];
      if (!doc) continue;
      hits.push({ name: doc.name, summary: summaryOf(doc.description), score: Math.round(r.score * 100) / 100 });
      if (hits.length >= limit) break;
    }
    return hits;
  }

  /**
   * Tools whose name, title, description or parameter names match the RE2 `pattern`
   * (case-insensitive, unanchored), in catalogue order, at most `limit`.
   * @throws GatewayError INVALID_PARAMS for an empty, over-long or invalid pattern.
   */
  regex(pattern: string, allowed: (name: string) => boolean, limit: number): ToolHit[] {
    checkQuery(pattern, 'pattern');
    let re: RE2JS;
    try {
      re = RE2JS.compile(pattern, RE2JS.CASE_INSENSITIVE);
    } catch (err) {
      throw new GatewayError('INVALID_PARAMS', `Invalid regular expression (RE2 syntax): ${err instanceof Error ? err.message : String(err)}`, { pattern });
    }
    const hits: ToolHit[] = [];
    for (const doc of this.docs) {
      if (!allowed(doc.name)) continue;
      if (re.test(doc.name) || re.test(doc.title) || re.test(doc.description) || re.test(doc.params)) {
        hits.push({ name: doc.name, summary: summaryOf(doc.description), score: 1 });
        if (hits.length >= limit) break;
      }
    }
    return hits;
  }
}

function checkQuery(query: string, field: string): void {
  if (query.trim() === '') throw new GatewayError('INVALID_PARAMS', `search_tools: ${field} must not be empty`, { field });
  if (query.length > MAX_QUERY_CHARS) throw new GatewayError('INVALID_PARAMS', `search_tools: ${field} is longer than ${MAX_QUERY_CHARS} characters`, { field, max_chars: MAX_QUERY_CHARS });
}

const indexes = new WeakMap<readonly JsonObject[], ToolSearchIndex>();

/** The index of catalogue `tools`, built on first use and kept while that array is alive. */
export function indexFor(tools: readonly JsonObject[]): ToolSearchIndex {
  let index = indexes.get(tools);
  if (!index) {
    index = new ToolSearchIndex(tools);
    indexes.set(tools, index);
  }
  return index;
}
