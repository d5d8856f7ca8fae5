/**
 * One way to report io-ts validation errors: `path: expected Type, got value` lines, the path made
 * of field names and array indices (the member indices io-ts inserts below intersections and
 * unions — also behind `t.exact` — are left out), values cut to 80 characters.
 */
import type * as t from 'io-ts';

function isComposite(codec: unknown): boolean {
  let c = codec as { _tag?: string; type?: unknown } | undefined;
  while (c && c._tag === 'ExactType') c = c.type as typeof c;
  return c?._tag === 'IntersectionType' || c?._tag === 'UnionType';
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    // too deep for the recursive JSON.stringify, a bigint or a cycle: name the kind only
    text = Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : typeof value;
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** The distinct problem lines of `errors`; `root` names the whole value (e.g. `(body)`). */
export function formatIoTsErrors(errors: t.Errors, root = '(root)'): string[] {
  const lines = new Set<string>();
  for (const e of errors) {
    const path: string[] = [];
    for (let i = 1; i < e.context.length; i++) {
      const c = e.context[i];
      const parent = e.context[i - 1];
      if (c === undefined || parent === undefined) continue;
      if (isComposite(parent.type)) continue;
      path.push(c.key);
    }
    const last = e.context[e.context.length - 1];
    lines.add(`${path.join('.') || root}: expected ${last?.type.name ?? 'value'}, got ${show(e.value)}`);
  }
  return [...lines];
}
