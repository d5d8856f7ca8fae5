// Live events: the domain-event stream of /api/ws/events with its filters (event types, upstream
// ids, `since` to replay stored events), pause/resume, and the feed's dropped-events warnings.
// Live events come sampled: one frame per BATCH_MS with the newest BATCH_MAX events and a count of
// those left out, so an open page costs the gateway a bounded amount however busy it is.
import { useEffect, useRef, useState } from 'preact/hooks';
import { html, wsUrl, fmtTime, ErrorBox } from '../lib.js';

const KEEP = 200;
const BATCH_MS = 500;
const BATCH_MAX = 20;
const list = (text) => text.split(',').map((s) => s.trim()).filter((s) => s !== '');

function summary(e) {
  const skip = new Set(['seq', 'event_type', 'timestamp', 'mcp_server_id', 'tenant_id']);
  return Object.entries(e)
    .filter(([k]) => !skip.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`)
    .join(' ');
}

export function Events() {
  const [filters, setFilters] = useState({ types: '', ids: '', since: '' });
  const [applied, setApplied] = useState(filters);
  const [rows, setRows] = useState([]);
  const [paused, setPaused] = useState(false);
  const [status, setStatus] = useState('connecting');
  const [warnings, setWarnings] = useState([]);
  const [error, setError] = useState(null);
  const pending = useRef([]);
  const pausedRef = useRef(false);
  const [held, setHeld] = useState(0);
  const [sampled, setSampled] = useState({ matched: 0, out: 0 });
  useEffect(() => {
    const ws = new WebSocket(wsUrl('/api/ws/events'));
    let live = true;
    // the feed sends everything until it has our subscribe; events before the ack are not ours
    let subscribed = false;
    let flush;
    const push = (raw) => {
      // the details text is computed once per event, not on every render
      const e = { seq: raw.seq, timestamp: raw.timestamp, event_type: raw.event_type, mcp_server_id: raw.mcp_server_id, details: summary(raw) };
      pending.current.push(e);
      if (pending.current.length > KEEP) pending.current.splice(0, pending.current.length - KEEP);
      if (pausedRef.current) {
        setHeld(pending.current.length);
        return;
      }
      // render at most every 100 ms however fast events come (frames come every BATCH_MS anyway)
      flush ??= setTimeout(() => {
        flush = undefined;
        const batch = pending.current.splice(0);
        setRows((old) => [...batch.reverse(), ...old].slice(0, KEEP));
      }, 100);
    };
    ws.onopen = () => {
      setStatus('subscribing');
      const msg = { type: 'subscribe', batch_ms: BATCH_MS, batch_max: BATCH_MAX };
      if (list(applied.types).length) msg.event_types = list(applied.types);
      if (list(applied.ids).length) msg.mcp_server_ids = list(applied.ids);
      if (applied.since !== '' && Number.isInteger(Number(applied.since))) msg.since = Number(applied.since);
      ws.send(JSON.stringify(msg));
    };
    ws.onmessage = (m) => {
      // a frame the old socket still delivers after a filter change belongs to the old filter
      if (!live) return;
      let data;
      try {
        data = JSON.parse(m.data);
      } catch {
        return;
      }
      if (data.type === 'subscribed') {
        subscribed = true;
        setStatus('open');
        setError(null);
      } else if (data.type === 'error') setError(new Error(`${data.code}: ${data.message}`));
      else if (data.type === 'warning') setWarnings((w) => [{ at: new Date().toISOString(), ...data }, ...w].slice(0, 20));
      else if (!subscribed) return;
      else if (data.event_type) push(data);
      else if (data.type === 'batch') {
        for (const e of data.events) push(e);
        setSampled((c) => ({ matched: c.matched + data.matched, out: c.out + data.sampled_out }));
      }
    };
    ws.onclose = (ev) => setStatus(`closed (${ev.code})`);
    ws.onerror = () => setStatus('error');
    setStatus('connecting');
    setRows([]);
    // events of the previous subscription still waiting for a render (or held while paused) are
    // not shown under the new filter
    pending.current = [];
    setHeld(0);
    setSampled({ matched: 0, out: 0 });
    return () => {
      live = false;
      clearTimeout(flush);
      ws.onmessage = null;
      ws.onclose = null;
      ws.close();
    };
  }, [applied]);
  const togglePause = () => {
    pausedRef.current = !paused;
    if (paused) {
      const batch = pending.current.splice(0);
      setRows((old) => [...batch.reverse(), ...old].slice(0, KEEP));
      setHeld(0);
    }
    setPaused(!paused);
  };
  const submit = (ev) => {
    ev.preventDefault();
    // read the fields themselves: inputs typed just before the submit may not have re-rendered yet
    const field = (id) => ev.currentTarget.querySelector(`#${id}`)?.value ?? '';
    setApplied({ types: field('ev-types'), ids: field('ev-ids'), since: field('ev-since') });
  };
  return html`
    <form class="filters" onSubmit=${submit} id="event-filters">
      <input id="ev-types" placeholder="event types, comma-separated" value=${filters.types} onInput=${(e) => setFilters((f) => ({ ...f, types: e.target.value }))} />
      <input id="ev-ids" placeholder="upstream ids" value=${filters.ids} onInput=${(e) => setFilters((f) => ({ ...f, ids: e.target.value }))} />
      <input id="ev-since" placeholder="since seq" type="number" min="0" value=${filters.since} onInput=${(e) => setFilters((f) => ({ ...f, since: e.target.value }))} />
      <button type="submit">Apply</button>
      <button type="button" id="ev-pause" onClick=${togglePause}>${paused ? `Resume (${held} held)` : 'Pause'}</button>
      <span class="muted" id="ev-status">${status}</span>
      <span class="muted" id="ev-sampled" title=${`at most ${BATCH_MAX} events per ${BATCH_MS} ms are sent to this page`}>${sampled.out > 0 ? `${sampled.out} of ${sampled.matched} events not shown (sampled)` : ''}</span>
    </form>
    <${ErrorBox} error=${error} />
    ${warnings.map((w) => html`<div class="warning" role="status">${fmtTime(w.at)}: ${w.code === 'events_dropped' ? `${w.dropped} events dropped (this page did not keep up)` : w.message || w.code}</div>`)}
    <table class="events" id="events-table">
      <thead><tr><th>seq</th><th>time</th><th>event</th><th>upstream</th><th>details</th></tr></thead>
      <tbody>
        ${rows.map((e) => html`<tr key=${e.seq} data-event=${e.event_type}>
          <td>${e.seq}</td><td>${fmtTime(e.timestamp)}</td><td>${e.event_type}</td><td>${e.mcp_server_id || ''}</td><td class="details">${e.details}</td>
        </tr>`)}
      </tbody>
    </table>`;
}
