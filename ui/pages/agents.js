// Agents and tasks (/api/v1/agents with their live /ws status, /api/v1/tasks) and the tenant's
// active workspaces with their members (/api/v1/workspaces). Everything is the caller's tenant.
import { useEffect, useState } from 'preact/hooks';
import { api, html, fmtTime, Badge, ErrorBox } from '../lib.js';

export function Agents() {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [status, setStatus] = useState('');
  useEffect(() => {
    let stopped = false;
    let timer;
    const load = async () => {
      try {
        const q = status ? `&status=${encodeURIComponent(status)}` : '';
        const [agents, tasks, workspaces] = await Promise.all([api('GET', '/api/v1/agents?limit=200'), api('GET', `/api/v1/tasks?limit=200${q}`), api('GET', '/api/v1/workspaces')]);
        if (!stopped) {
          setData({ agents, tasks, workspaces });
          setError(null);
        }
      } catch (err) {
        if (!stopped) setError(err);
      }
      if (!stopped) timer = setTimeout(load, 5000);
    };
    load();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [status]);
  if (!data) return html`<${ErrorBox} error=${error} /><p class="muted">Loading…</p>`;
  const agents = data.agents.agents || [];
  return html`
    <${ErrorBox} error=${error} />
    <h2>Agents <span class="muted">${data.agents.total ?? agents.length}</span></h2>
    <table id="agents-table">
      <thead><tr><th>id</th><th>name</th><th>model</th><th>capabilities</th><th>status</th><th>updated</th></tr></thead>
      <tbody>${agents.map((a) => html`<tr key=${a.id} data-agent=${a.name}><td><code>${a.id}</code></td><td>${a.name}</td><td>${a.model || ''}</td><td>${(a.capabilities || []).join(', ')}</td><td><${Badge} value=${a.status || 'offline'} /></td><td>${fmtTime(a.updated_at)}</td></tr>`)}</tbody>
    </table>
    <h2>Tasks <span class="muted">${data.tasks.total}</span>
      <select value=${status} onChange=${(e) => setStatus(e.target.value)} id="task-status">
        <option value="">any status</option>
        ${['queued', 'assigned', 'in_progress', 'completed', 'failed'].map((s) => html`<option value=${s}>${s}</option>`)}
      </select>
    </h2>
    <table id="tasks-table">
      <thead><tr><th>id</th><th>type</th><th>status</th><th>agent</th><th>attempts</th><th>created</th></tr></thead>
      <tbody>${data.tasks.tasks.map((t) => html`<tr key=${t.id}><td><code>${t.id}</code></td><td>${t.type}</td><td><${Badge} value=${t.status} /></td><td>${t.agent_id || ''}</td><td>${t.attempts ?? ''}</td><td>${fmtTime(t.created_at)}</td></tr>`)}</tbody>
    </table>
    <h2>Workspaces <span class="muted">${data.workspaces.total} active</span></h2>
    ${data.workspaces.workspaces.length === 0 ? html`<p class="muted">No workspace has members right now (agents join them over <code>/ws</code>).</p>` : ''}
    <div class="cards">${data.workspaces.workspaces.map((w) => html`<div class="card" key=${w.workspace_id}>
      <div class="card-head"><b>${w.workspace_id}</b></div>
      <div>members: ${w.members.map((m) => m.name || m.member_id).join(', ')}</div>
      <div>documents: ${w.documents.map((d) => `${d.document_id} (${d.size_bytes} B${d.locked_by ? `, locked by ${d.locked_by}` : ''})`).join(', ') || 'none'}</div>
    </div>`)}</div>`;
}
