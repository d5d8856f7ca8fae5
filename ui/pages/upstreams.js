// Upstreams: the MCP clients of the management API — add, edit, reconnect, delete — with the
// API's validation problems shown next to the field they name.
import { useEffect, useState } from 'preact/hooks';
import { api, html, fieldErrors, Badge, ErrorBox } from '../lib.js';

const lines = (text) => text.split('\n').map((s) => s.trim()).filter((s) => s !== '');
const commas = (text) => text.split(',').map((s) => s.trim()).filter((s) => s !== '');

function FieldError({ errors, name }) {
  return errors[name] ? html`<small class="field-error" data-field=${name}>${errors[name]}</small>` : null;
}

function AddForm({ onDone }) {
  const [f, setF] = useState({ name: '', connection_type: 'stdio', command: '', args: '', envs: '', connection_string: '', inprocess_server: 'demo', tools_to_execute: '*' });
  const [errors, setErrors] = useState({});
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (k) => (e) => setF((old) => ({ ...old, [k]: e.target.value }));
  const submit = async (ev) => {
    ev.preventDefault();
    const body = { name: f.name, connection_type: f.connection_type, tools_to_execute: commas(f.tools_to_execute) };
    if (f.connection_type === 'stdio') {
      body.stdio_config = { command: f.command, args: lines(f.args) };
      if (lines(f.envs).length) body.stdio_config.envs = lines(f.envs);
    } else if (f.connection_type === 'inprocess') body.inprocess_server = f.inprocess_server;
    else body.connection_string = f.connection_string;
    setBusy(true);
    setErrors({});
    setError(null);
    try {
      await api('POST', '/api/mcp/client', body);
      onDone();
    } catch (err) {
      setError(err);
      setErrors(fieldErrors(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="panel" onSubmit=${submit} id="add-upstream">
    <h3>Add an upstream</h3>
    <label>name <input name="name" value=${f.name} onInput=${set('name')} placeholder="letters, digits, _" /><${FieldError} errors=${errors} name="name" /></label>
    <label>connection
      <select name="connection_type" value=${f.connection_type} onChange=${set('connection_type')}>
        <option value="stdio">stdio</option><option value="http">http</option><option value="sse">sse</option><option value="inprocess">inprocess</option>
      </select><${FieldError} errors=${errors} name="connection_type" /></label>
    ${f.connection_type === 'stdio'
      ? html`<label>command <input name="command" value=${f.command} onInput=${set('command')} placeholder="node" /></label>
          <label>arguments, one per line <textarea name="args" rows="2" value=${f.args} onInput=${set('args')}></textarea></label>
          <label>environment, KEY=VALUE per line <textarea name="envs" rows="2" value=${f.envs} onInput=${set('envs')}></textarea></label>
          <${FieldError} errors=${errors} name="stdio_config" />`
      : f.connection_type === 'inprocess'
        ? html`<label>in-process server <input name="inprocess_server" value=${f.inprocess_server} onInput=${set('inprocess_server')} /><${FieldError} errors=${errors} name="inprocess_server" /></label>`
        : html`<label>URL <input name="connection_string" value=${f.connection_string} onInput=${set('connection_string')} placeholder="https://…/mcp" /><${FieldError} errors=${errors} name="connection_string" /></label>`}
    <label>tools_to_execute, comma-separated (* = all) <input name="tools_to_execute" value=${f.tools_to_execute} onInput=${set('tools_to_execute')} /><${FieldError} errors=${errors} name="tools_to_execute" /></label>
    <button type="submit" disabled=${busy}>${busy ? 'Connecting…' : 'Add'}</button>
    ${errors._ ? html`<small class="field-error">${errors._}</small>` : ''}
    <${ErrorBox} error=${error} />
  </form>`;
}

function EditForm({ client, onDone }) {
  const c = client.config;
  const [f, setF] = useState({
    tools_to_execute: (c.tools_to_execute || []).join(', '),
    disallowed_actions: (c.disallowed_actions || []).join(', '),
    allow_on_all_virtual_keys: c.allow_on_all_virtual_keys === true,
    tool_pricing: JSON.stringify(c.tool_pricing || {}),
    vk_configs: JSON.stringify((client.vk_configs || []).map((v) => ({ virtual_key_id: v.virtual_key_id, tools_to_execute: v.tools_to_execute }))),
  });
  const [errors, setErrors] = useState({});
  const [error, setError] = useState(null);
  const set = (k) => (e) => {
    const value = e.target.type === 'checkbox' ? e.target.checked : e.target.value;
    setF((old) => ({ ...old, [k]: value }));
  };
  const submit = async (ev) => {
    ev.preventDefault();
    const local = {};
    const parse = (k) => {
      try {
        return JSON.parse(f[k]);
      } catch {
        local[k] = `${k}: not valid JSON`;
        return undefined;
      }
    };
    const body = { tools_to_execute: commas(f.tools_to_execute), disallowed_actions: commas(f.disallowed_actions), allow_on_all_virtual_keys: f.allow_on_all_virtual_keys, tool_pricing: parse('tool_pricing'), vk_configs: parse('vk_configs') };
    if (Object.keys(local).length) {
      setErrors(local);
      return;
    }
    try {
      await api('PUT', `/api/mcp/client/${encodeURIComponent(c.client_id)}`, body);
      onDone();
    } catch (err) {
      setError(err);
      setErrors(fieldErrors(err));
    }
  };
  return html`<form class="panel" onSubmit=${submit} id="edit-upstream">
    <h3>Edit ${c.name}</h3>
    <label>tools_to_execute <input name="tools_to_execute" value=${f.tools_to_execute} onInput=${set('tools_to_execute')} /><${FieldError} errors=${errors} name="tools_to_execute" /></label>
    <label>disallowed_actions <input name="disallowed_actions" value=${f.disallowed_actions} onInput=${set('disallowed_actions')} /><${FieldError} errors=${errors} name="disallowed_actions" /></label>
    <label class="check"><input type="checkbox" name="allow_on_all_virtual_keys" checked=${f.allow_on_all_virtual_keys} onChange=${set('allow_on_all_virtual_keys')} /> allow_on_all_virtual_keys</label>
    <label>tool_pricing (JSON, USD per call) <input name="tool_pricing" value=${f.tool_pricing} onInput=${set('tool_pricing')} /><${FieldError} errors=${errors} name="tool_pricing" /></label>
    <label>vk_configs (JSON: which tools each virtual key sees) <textarea name="vk_configs" rows="3" value=${f.vk_configs} onInput=${set('vk_configs')}></textarea><${FieldError} errors=${errors} name="vk_configs" /></label>
    <button type="submit">Save</button> <button type="button" class="link" onClick=${() => onDone()}>Cancel</button>
    <${ErrorBox} error=${error} />
  </form>`;
}

export function Upstreams() {
  const [clients, setClients] = useState(null);
  const [error, setError] = useState(null);
  const [editing, setEditing] = useState(null);
  const [adding, setAdding] = useState(false);
  const [busy, setBusy] = useState('');
  const load = () => api('GET', '/api/mcp/clients?limit=500').then((r) => setClients(r.clients), setError);
  useEffect(() => {
    load();
    const t = setInterval(load, 5000);
    return () => clearInterval(t);
  }, []);
  const act = async (label, fn) => {
    setBusy(label);
    setError(null);
    try {
      await fn();
      await load();
    } catch (err) {
      setError(err);
    } finally {
      setBusy('');
    }
  };
  if (!clients) return html`<${ErrorBox} error=${error} /><p class="muted">Loading…</p>`;
  return html`
    <div class="toolbar"><button type="button" id="add-upstream-open" onClick=${() => setAdding(!adding)}>${adding ? 'Close' : 'Add upstream'}</button> <span class="muted">${busy}</span></div>
    ${adding ? html`<${AddForm} onDone=${() => { setAdding(false); load(); }} />` : ''}
    <${ErrorBox} error=${error} />
    <table class="upstreams" id="upstreams-table">
      <thead><tr><th>name</th><th>connection</th><th>state</th><th>tools</th><th>tools_to_execute</th><th></th></tr></thead>
      <tbody>${clients.map((c) => html`<tr key=${c.config.client_id} data-upstream=${c.config.name}>
        <td><b>${c.config.name}</b></td>
        <td>${c.config.connection_type} <span class="muted">${c.config.connection_string || (c.config.stdio_config ? c.config.stdio_config.command : '') || c.config.inprocess_server || ''}</span></td>
        <td><${Badge} value=${c.state} /></td>
        <td>${(c.tools || []).length}</td>
        <td>${(c.config.tools_to_execute ?? ['*']).join(', ')}</td>
        <td class="actions">
          <button type="button" onClick=${() => setEditing(editing === c.config.client_id ? null : c.config.client_id)}>Edit</button>
          <button type="button" onClick=${() => act(`reconnecting ${c.config.name}…`, () => api('POST', `/api/mcp/client/${encodeURIComponent(c.config.client_id)}/reconnect`))}>Reconnect</button>
          <button type="button" class="danger" onClick=${() => confirm(`Delete upstream ${c.config.name}?`) && act(`deleting ${c.config.name}…`, () => api('DELETE', `/api/mcp/client/${encodeURIComponent(c.config.client_id)}`))}>Delete</button>
        </td>
      </tr>
      ${editing === c.config.client_id ? html`<tr><td colspan="6"><${EditForm} client=${c} onDone=${() => { setEditing(null); load(); }} /></td></tr>` : ''}`)}
      </tbody>
    </table>`;
}
