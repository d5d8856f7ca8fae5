// Keys (admin): API keys and virtual keys — create (the secret is shown once, here, and never
// again), list, revoke; and which tools each virtual key sees (the clients' vk_configs).
import { useEffect, useState } from 'preact/hooks';
import { api, html, fieldErrors, fmtTime, Badge, ErrorBox } from '../lib.js';

const KINDS = [
  { kind: 'api_key', title: 'API keys', base: '/api/auth/keys', many: 'keys', one: 'key' },
  { kind: 'virtual_key', title: 'Virtual keys', base: '/api/auth/virtual-keys', many: 'virtual_keys', one: 'virtual_key' },
];

function status(k) {
  if (k.revoked_at) return 'revoked';
  if (k.expires_at && Date.parse(k.expires_at) <= Date.now()) return 'expired';
  return 'active';
}

function KeyTable({ s, vkTools }) {
  const [keys, setKeys] = useState(null);
  const [error, setError] = useState(null);
  const [created, setCreated] = useState(null);
  const [errors, setErrors] = useState({});
  const [f, setF] = useState({ name: '', role: 'user', tenant_id: '', expires_at: '' });
  const load = () => api('GET', s.base).then((r) => setKeys(r[s.many]), setError);
  useEffect(() => {
    load();
  }, []);
  const set = (k) => (e) => setF((old) => ({ ...old, [k]: e.target.value }));
  const create = async (ev) => {
    ev.preventDefault();
    const body = { name: f.name };
    if (s.kind === 'api_key') body.role = f.role;
    if (f.tenant_id) body.tenant_id = f.tenant_id;
    if (f.expires_at) body.expires_at = new Date(f.expires_at).toISOString();
    setErrors({});
    setError(null);
    try {
      const r = await api('POST', s.base, body);
      setCreated({ id: r[s.one].id, secret: r.secret });
      setF({ name: '', role: 'user', tenant_id: '', expires_at: '' });
      load();
    } catch (err) {
      setError(err);
      setErrors(fieldErrors(err));
    }
  };
  const revoke = async (id) => {
    if (!confirm(`Revoke ${id}? It never authenticates again.`)) return;
    try {
      await api('DELETE', `${s.base}/${encodeURIComponent(id)}`);
      load();
    } catch (err) {
      setError(err);
    }
  };
  return html`<section class="keys" data-kind=${s.kind}>
    <h2>${s.title}</h2>
    <form class="filters" onSubmit=${create}>
      <input name="name" placeholder="name" value=${f.name} onInput=${set('name')} required />
      ${s.kind === 'api_key' ? html`<select name="role" value=${f.role} onChange=${set('role')}><option value="user">user</option><option value="admin">admin</option></select>` : ''}
      <input name="tenant_id" placeholder="tenant (default)" value=${f.tenant_id} onInput=${set('tenant_id')} />
      <label>expires <input name="expires_at" type="datetime-local" value=${f.expires_at} onInput=${set('expires_at')} /></label>
      <button type="submit">Create</button>
    </form>
    ${Object.values(errors).map((e) => html`<small class="field-error">${e}</small>`)}
    <${ErrorBox} error=${error} />
    ${created ? html`<div class="secret" role="status">
      <div>Secret of <b>${created.id}</b> — copy it now, it is not shown again:</div>
      <code class="secret-value">${created.secret}</code>
      <button type="button" onClick=${() => setCreated(null)}>Done</button>
    </div>` : ''}
    ${keys ? html`<table>
      <thead><tr><th>id</th><th>name</th><th>prefix</th>${s.kind === 'api_key' ? html`<th>role</th>` : html`<th>tools it sees</th>`}<th>tenant</th><th>created</th><th>expires</th><th>status</th><th></th></tr></thead>
      <tbody>${keys.map((k) => html`<tr key=${k.id} data-key=${k.id}>
        <td><code>${k.id}</code></td><td>${k.name}</td><td><code>${k.prefix}…</code></td>
        ${s.kind === 'api_key' ? html`<td>${k.role}</td>` : html`<td>${(vkTools[k.id] || []).join('; ') || html`<span class="muted">clients with allow_on_all_virtual_keys</span>`}</td>`}
        <td>${k.tenant_id}</td><td>${fmtTime(k.created_at)}</td><td>${k.expires_at ? new Date(k.expires_at).toLocaleString() : ''}</td>
        <td><${Badge} value=${status(k)} /></td>
        <td>${status(k) === 'revoked' ? '' : html`<button type="button" class="danger" onClick=${() => revoke(k.id)}>Revoke</button>`}</td>
      </tr>`)}</tbody>
    </table>` : html`<p class="muted">Loading…</p>`}
  </section>`;
}

export function Keys() {
  const [vkTools, setVkTools] = useState({});
  useEffect(() => {
    api('GET', '/api/mcp/clients?limit=500').then(
      (r) => {
        const out = {};
        for (const c of r.clients) for (const v of c.vk_configs || []) (out[v.virtual_key_id] ||= []).push(`${c.config.name}: ${v.tools_to_execute.join(', ') || 'none'}`);
        setVkTools(out);
      },
      () => undefined,
    );
  }, []);
  return html`${KINDS.map((s) => html`<${KeyTable} key=${s.kind} s=${s} vkTools=${vkTools} />`)}
    <p class="muted">Which tools a virtual key sees is set per upstream (<code>vk_configs</code>) on the Upstreams page.</p>`;
}
