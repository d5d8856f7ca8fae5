import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import client from 'prom-client';
import { HotCounter, HotHistogram } from '../src/handlers/metrics-hot.js';

const BOUNDS = [0.0005, 0.001, 0.01, 0.1, 1, 10];

/**
 * The exposition as a sorted list of `name{labels sorted by name} value` lines plus the HELP/TYPE
 * lines: Prometheus gives label order and series order no meaning.
 */
function normalise(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((line) => {
      if (line.startsWith('#')) return line;
      const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (m === null) throw new Error(`unexpected line ${line}`);
      const labels = (m[2] ?? '').match(/[a-z_]+="(?:[^"\\]|\\.)*"/g) ?? [];
      return `${m[1]}{${[...labels].sort().join(',')}} ${m[3]}`;
    })
    .sort();
}

/** The same updates applied to prom-client's own metrics and to the hot ones, in two registries. */
async function expositions(updates: readonly (readonly [client: string, tool: string, seconds: number, inc: number])[]): Promise<[string[], string[]]> {
  const ref = new client.Registry();
  const hot = new client.Registry();
  for (const r of [ref, hot]) r.setDefaultLabels({ node_id: 'n1' });
  const refCounter = new client.Counter({ name: 'x_calls_total', help: 'Calls.', labelNames: ['client', 'tool'], registers: [ref] });
  const refHist = new client.Histogram({ name: 'x_duration_seconds', help: 'Duration.', labelNames: ['client'], buckets: BOUNDS, registers: [ref] });
  const hotCounter = new HotCounter('x_calls_total', 'Calls.', ['client', 'tool'], [hot]);
  const hotHist = new HotHistogram('x_duration_seconds', 'Duration.', ['client'], BOUNDS, [hot]);
  for (const [c, t, s, n] of updates) {
    refCounter.inc({ client: c, tool: t }, n);
    refHist.observe({ client: c }, s);
    hotCounter.labels(c, t).inc(n);
    hotHist.labels(c).observe(s);
  }
  return [normalise(await ref.metrics()), normalise(await hot.metrics())];
}

describe('HotCounter / HotHistogram', () => {
  it('expose exactly what prom-client exposes for the same updates (bucket bounds included)', async () => {
    const [ref, hot] = await expositions([
      ['a', 'echo', 0.0005, 1],
      ['a', 'echo', 0.00051, 2],
      ['b', 'add', 10, 1],
      ['b', 'add', 11, 1],
      ['a', 'add', 0, 0.25],
    ]);
    expect(hot).toEqual(ref);
    expect(hot).toContain('x_duration_seconds_bucket{client="b",le="+Inf",node_id="n1"} 2');
    expect(hot).toContain('x_calls_total{client="a",node_id="n1",tool="echo"} 3');
  });

  it('agree with prom-client for any sequence of updates (property)', async () => {
    const name = fc.constantFrom('a', 'b', 'c"q', 'd\\n');
    const update = fc.tuple(name, name, fc.double({ min: 0, max: 100, noNaN: true }), fc.integer({ min: 0, max: 5 }));
    await fc.assert(
      fc.asyncProperty(fc.array(update, { maxLength: 40 }), async (updates) => {
        const [ref, hot] = await expositions(updates);
        expect(hot).toEqual(ref);
      }),
      { numRuns: 60 },
    );
  });

  it('refuse a wrong number of label values, more than three labels and bad bounds', () => {
    const r = new client.Registry();
    const c = new HotCounter('y_total', 'Y.', ['a', 'b'], [r]);
    expect(() => c.labels('only-one')).toThrow(/expected 2 label values/);
    expect(() => new HotCounter('z_total', 'Z.', ['a', 'b', 'c', 'd'], [r])).toThrow(/at most 3 labels/);
    expect(() => new HotHistogram('h', 'H.', [], [1, 1], [r])).toThrow(/strictly ascending/);
    expect(() => new HotHistogram('h2', 'H.', [], [], [r])).toThrow(/strictly ascending/);
  });

  it('serve readers of getSingleMetric(name).get() with prom-client shapes', async () => {
    const r = new client.Registry();
    const h = new HotHistogram('t_seconds', 'T.', ['client'], [0.1, 1], [r]);
    h.labels('a').observe(0.5);
    const m = r.getSingleMetric('t_seconds');
    const values = (await m?.get())?.values ?? [];
    expect(values).toContainEqual({ value: 1, labels: { client: 'a', le: 1 }, metricName: 't_seconds_bucket' });
    expect(values).toContainEqual({ value: 0, labels: { client: 'a', le: 0.1 }, metricName: 't_seconds_bucket' });
    expect(values).toContainEqual({ value: 0.5, labels: { client: 'a' }, metricName: 't_seconds_sum' });
  });
});
