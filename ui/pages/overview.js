// Overview: upstream cards from /api/ui/overview, polled every 2 s; for admins live charts of
// calls/s, p50/p99 latency per upstream and gateway requests/s, from the differences between
// two samples of cumulative counters (the Prometheus rate()/histogram_quantile() method).
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, html, fmtNum, Badge, ErrorBox } from '../lib.js';

const POLL_MS = 2000;
const KEEP = 150; // samples: 5 minutes
const COLORS = ['#2563eb', '#16a34a', '#db2777', '#ea580c', '#7c3aed', '#0891b2', '#ca8a04', '#4b5563'];

/** Quantile q of the observations between two cumulative bucket lists [[le, count], ...]. */
export function quantileBetween(prev, cur, q) {
  const before = new Map((prev || []).map(([le, c]) => [le === null ? Infinity : le, c]));
  const deltas = cur.map(([le, c]) => [le === null ? Infinity : le, c - (before.get(le === null ? Infinity : le) || 0)]);
  const total = deltas.length ? deltas[deltas.length - 1][1] : 0;
  if (!(total > 0)) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, cum] of deltas) {
    if (cum >= rank) {
      if (le === Infinity) return lower * 1000;
      const inBucket = cum - below;
      return (lower + (le - lower) * (inBucket > 0 ? (rank - below) / inBucket : 1)) * 1000;
    }
    lower = le;
    below = cum;
  }
  return lower * 1000;
}

function Chart({ title, series, data, unit }) {
  const el = useRef(null);
  const plot = useRef(null);
  const key = series.map((s) => s.label).join('|');
  useEffect(() => {
    const width = Math.max(300, el.current.clientWidth);
    plot.current = new window.uPlot(
      {
        width,
        height: 180,
        series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: s.color || COLORS[i % COLORS.length], width: 1.5, dash: s.dash, spanGaps: false, value: (u, v) => (v === null || v === undefined ? '–' : `${fmtNum(v, 2)} ${unit}`) }))],
        axes: [{}, { size: 56, values: (u, ticks) => ticks.map((v) => fmtNum(v, 1)) }],
        scales: { x: { time: true, range: (u, min, max) => [Math.min(min, max - 60), max] }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
        legend: { live: true },
      },
      data,
      el.current,
    );
    const onResize = () => plot.current && plot.current.setSize({ width: Math.max(300, el.current.clientWidth), height: 180 });
    addEventListener('resize', onResize);
    return () => {
      removeEventListener('resize', onResize);
      plot.current.destroy();
      plot.current = null;
    };
  }, [key]);
  useEffect(() => {
    if (plot.current) plot.current.setData(data);
  }, [data]);
  return html`<section class="chart"><h3>${title}</h3><div ref=${el}></div></section>`;
}

/** Rows of one sample pair → per-upstream rates and quantiles, gateway rates. */
function derive(prev, cur) {
  const dt = (cur.sampled_at - prev.sampled_at) / 1000;
  const before = new Map(prev.upstreams.map((u) => [u.name, u]));
  const ups = {};
  for (const u of cur.upstreams) {
    const p = before.get(u.name);
    if (!p || u.calls === undefined) continue;
    ups[u.name] = {
      rate: dt > 0 ? Math.max(0, u.calls - p.calls) / dt : null,
      errRate: dt > 0 ? Math.max(0, u.errors - p.errors) / dt : null,
      p50: quantileBetween(p.buckets, u.buckets, 0.5),
      p99: quantileBetween(p.buckets, u.buckets, 0.99),
    };
  }
  const g = cur.gateway && prev.gateway && dt > 0 ? { rps: Math.max(0, cur.gateway.http_requests - prev.gateway.http_requests) / dt, eps: Math.max(0, cur.gateway.http_errors - prev.gateway.http_errors) / dt } : null;
  return { t: cur.sampled_at / 1000, ups, g };
}

export function Overview({ admin }) {
  const [sample, setSample] = useState(null);
  const [error, setError] = useState(null);
  const history = useRef({ prev: null, points: [] });
  const [, setTick] = useState(0);
  useEffect(() => {
    let stopped = false;
    let timer;
    const poll = async () => {
      try {
        const s = await api('GET', '/api/ui/overview');
        if (stopped) return;
        const h = history.current;
        if (h.prev) {
          h.points.push(derive(h.prev, s));
          if (h.points.length > KEEP) h.points.shift();
        }
        h.prev = s;
        setSample(s);
        setError(null);
        setTick((n) => n + 1);
      } catch (err) {
        if (!stopped) setError(err);
      }
      if (!stopped) timer = setTimeout(poll, POLL_MS);
    };
    poll();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, []);
  if (!sample) return html`<${ErrorBox} error=${error} /><p class="muted">Loading…</p>`;
  const names = sample.upstreams.map((u) => u.name);
  const pts = history.current.points;
  const last = pts[pts.length - 1];
  const xs = pts.map((p) => p.t);
  const col = (fn) => pts.map((p) => {
    const v = fn(p);
    return v === undefined ? null : v;
  });
  const callData = [xs, ...names.map((n) => col((p) => p.ups[n] && p.ups[n].rate))];
  const latSeries = names.flatMap((n, i) => [
    { label: `${n} p50`, color: COLORS[i % COLORS.length], dash: [4, 4] },
    { label: `${n} p99`, color: COLORS[i % COLORS.length] },
  ]);
  const latData = [xs, ...names.flatMap((n) => [col((p) => p.ups[n] && p.ups[n].p50), col((p) => p.ups[n] && p.ups[n].p99)])];
  const gwData = [xs, col((p) => p.g && p.g.rps), col((p) => p.g && p.g.eps)];
  const gw = sample.gateway;
  return html`
    <${ErrorBox} error=${error} />
    <div class="cards" id="upstream-cards">
      ${sample.upstreams.map((u) => html`<div class="card" data-upstream=${u.name}>
        <div class="card-head"><b>${u.name}</b> <span class="muted">${u.connection_type}</span></div>
        <div>state <span class="state"><${Badge} value=${u.state} /></span></div>
        <div>circuit <${Badge} value=${u.circuit} /></div>
        <div>health check ${u.health ? html`${u.health.ok ? '' : html`<${Badge} value="failed" /> `}${fmtNum(u.health.duration_ms, 1)} ms` : html`<span class="muted">none yet</span>`}</div>
        <div><span class="tool-count">${u.tool_count}</span> tools</div>
        ${u.calls !== undefined ? html`<div>${u.calls} calls${u.errors ? `, ${u.errors} errors` : ''}${last && last.ups[u.name] ? ` · ${fmtNum(last.ups[u.name].rate, 1)}/s` : ''}</div>` : ''}
      </div>`)}
    </div>
    ${gw ? html`<div class="stats">
      <div><b>${fmtNum(last && last.g ? last.g.rps : null)}</b> req/s</div>
      <div><b>${gw.http_errors}</b> 5xx total</div>
      <div><b>${gw.mcp_sessions}</b> MCP sessions</div>
      <div><b>${gw.websocket_connections['/api/ws/events'] + gw.websocket_connections['/api/ws/live']}</b> feed subscribers</div>
      <div><b>${gw.websocket_connections['/ws']}</b> agent sockets</div>
    </div>` : ''}
    ${admin && gw ? html`<div class="charts">
      <${Chart} title="Tool calls/s by upstream" unit="/s" series=${names.map((n, i) => ({ label: n, color: COLORS[i % COLORS.length] }))} data=${callData} />
      <${Chart} title="Tool call latency p50 (dashed) / p99, ms" unit="ms" series=${latSeries} data=${latData} />
      <${Chart} title="Gateway HTTP requests/s and 5xx/s" unit="/s" series=${[{ label: 'requests/s', color: COLORS[0] }, { label: '5xx/s', color: '#dc2626' }]} data=${gwData} />
    </div>
    <p class="muted">Sampled every ${POLL_MS / 1000} s from <code>/api/ui/overview</code>; the last ${KEEP * POLL_MS / 60000} minutes.</p>` : html`<p class="muted">Call rates and latencies are shown to admins only (they mix every tenant's traffic).</p>`}
  `;
}
