// Tool log: /api/mcp-logs with its filters (time, upstream client, tool, status, virtual key) and
// /api/mcp-logs/stats (count, success rate, mean latency, cost). Refreshes every 5 s while "live".
import { useEffect, useState } from 'preact/hooks';
import { api, html, fmtTime, fmtNum, Badge, ErrorBox, Json } from '../lib.js';

const FIELDS = ['from', 'to', 'client', 'tool', 'status', 'virtual_key'];

function query(f, extra) {
  const q = new URLSearchParams();
  for (const k of FIELDS) {
    let v = f[k];
    if (!v) continue;
    if (k === 'from' || k === 'to') v = new Date(v).toISOString();
    q.set(k, v);
  }
  for (const [k, v] of Object.entries(extra || {})) q.set(k, String(v));
  return q.toString();
}

export function ToolLog() {
  const [form, setForm] = useState({ from: '', to: '', client: '', tool: '', status: '', virtual_key: '' });
  const [applied, setApplied] = useState(form);
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [live, setLive] = useState(true);
  const [open, setOpen] = useState(null);
  const [page, setPage] = useState(0);
  const limit = 50;
  useEffect(() => {
    let stopped = false;
    let timer;
    const load = async () => {
      try {
        const [logs, stats] = await Promise.all([api('GET', `/api/mcp-logs?${query(applied, { limit, offset: page * limit })}`), api('GET', `/api/mcp-logs/stats?${query(applied)}`)]);
        if (!stopped) {
          setData({ logs, stats });
          setError(null);
        }
      } catch (err) {
        if (!stopped) setError(err);
      }
      if (!stopped && live) timer = setTimeout(load, 5000);
    };
    load();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [applied, live, page]);
  const set = (k) => (e) => setForm((old) => ({ ...old, [k]: e.target.value }));
  const submit = (ev) => {
    ev.preventDefault();
    setPage(0);
    setApplied({ ...form });
  };
  const s = data && data.stats;
  return html`
    <form class="filters" onSubmit=${submit} id="log-filters">
      <label>from <input type="datetime-local" step="1" value=${form.from} onInput=${set('from')} /></label>
      <label>to <input type="datetime-local" step="1" value=${form.to} onInput=${set('to')} /></label>
      <input id="log-client" placeholder="client" value=${form.client} onInput=${set('client')} />
      <input id="log-tool" placeholder="tool" value=${form.tool} onInput=${set('tool')} />
      <select id="log-status" value=${form.status} onChange=${set('status')}>
        <option value="">any status</option><option value="success">success</option><option value="error">error</option>
      </select>
      <input id="log-vk" placeholder="virtual key id" value=${form.virtual_key} onInput=${set('virtual_key')} />
      <button type="submit">Apply</button>
      <label class="check"><input type="checkbox" checked=${live} onChange=${(e) => setLive(e.target.checked)} /> live</label>
    </form>
    <${ErrorBox} error=${error} />
    ${s ? html`<div class="stats" id="log-stats">
      <div><b>${s.total_executions}</b> executions</div>
      <div><b>${fmtNum((s.success_rate ?? 0) * (s.success_rate <= 1 ? 100 : 1), 1)}%</b> success</div>
      <div><b>${fmtNum(s.average_latency, 1)} ms</b> mean latency</div>
      <div><b>$${fmtNum(s.total_cost, 4)}</b> cost</div>
    </div>` : ''}
    ${data ? html`<table class="log" id="log-table">
      <thead><tr><th>time</th><th>client</th><th>tool</th><th>status</th><th>latency</th><th>cost</th><th>key</th><th>surface</th></tr></thead>
      <tbody>${data.logs.logs.map((l) => html`
        <tr key=${l.id} data-tool=${`${l.client}-${l.tool}`} onClick=${() => setOpen(open === l.id ? null : l.id)} class="clickable">
          <td>${fmtTime(l.timestamp)}</td><td>${l.client}</td><td>${l.tool}</td><td><${Badge} value=${l.status} /></td>
          <td>${fmtNum(l.latency_ms, 1)} ms</td><td>${l.cost_usd ? `$${l.cost_usd}` : ''}</td><td>${l.virtual_key || ''}</td><td>${l.surface || ''}</td>
        </tr>
        ${open === l.id ? html`<tr class="open"><td colspan="8"><b>arguments</b><${Json} value=${l.arguments} /><b>result</b><${Json} value=${l.result ?? l.error} /></td></tr>` : ''}`)}
      </tbody>
    </table>
    <div class="pager">
      <button type="button" disabled=${page === 0} onClick=${() => setPage(page - 1)}>Newer</button>
      <span class="muted">${data.logs.offset + 1}–${data.logs.offset + data.logs.count} of ${data.logs.total_count}</span>
      <button type="button" disabled=${data.logs.offset + data.logs.count >= data.logs.total_count} onClick=${() => setPage(page + 1)}>Older</button>
    </div>` : html`<p class="muted">Loading…</p>`}`;
}
