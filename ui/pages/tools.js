// Tools: the aggregated catalogue (/api/v1/tools), filters, a tool's schema, and "try it": a
// form generated from its inputSchema that calls it (POST /api/v1/tools/:client/:tool).
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, html, ErrorBox, Json } from '../lib.js';

/** One form field of a JSON Schema property. */
function Field({ name, schema, required, value, onInput }) {
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
  const label = html`<span>${name}${required ? ' *' : ''} <span class="muted">${type || 'json'}</span></span>`;
  const help = schema.description ? html`<small class="muted">${schema.description}</small>` : '';
  const id = `arg-${name}`;
  if (Array.isArray(schema.enum)) {
    return html`<label>${label}<select id=${id} name=${name} value=${value ?? ''} onChange=${(e) => onInput(e.target.value)}>
      <option value="">${required ? 'choose…' : '(none)'}</option>
      ${schema.enum.map((v) => html`<option value=${String(v)}>${String(v)}</option>`)}
    </select>${help}</label>`;
  }
  if (type === 'boolean') {
    return html`<label class="check"><input id=${id} name=${name} type="checkbox" checked=${value === true} onChange=${(e) => onInput(e.target.checked)} />${label}${help}</label>`;
  }
  if (type === 'number' || type === 'integer') {
    return html`<label>${label}<input id=${id} name=${name} type="number" step=${type === 'integer' ? '1' : 'any'} value=${value ?? ''} onInput=${(e) => onInput(e.target.value)} />${help}</label>`;
  }
  if (type === 'string') {
    return html`<label>${label}<input id=${id} name=${name} value=${value ?? ''} onInput=${(e) => onInput(e.target.value)} />${help}</label>`;
  }
  return html`<label>${label}<textarea id=${id} name=${name} rows="3" placeholder="JSON" value=${value ?? ''} onInput=${(e) => onInput(e.target.value)}></textarea>${help}</label>`;
}

/** The arguments object of the form values, typed by the schema. @throws Error naming a bad field. */
export function toArguments(schema, values) {
  const props = (schema && schema.properties) || {};
  const args = {};
  for (const [name, s] of Object.entries(props)) {
    const v = values[name];
    if (v === undefined || v === '') continue;
    const type = Array.isArray(s.type) ? s.type.find((t) => t !== 'null') : s.type;
    if (Array.isArray(s.enum)) {
      const hit = s.enum.find((e) => String(e) === v);
      args[name] = hit === undefined ? v : hit;
    } else if (type === 'boolean') args[name] = v === true;
    else if (type === 'number' || type === 'integer') {
      const n = Number(v);
      if (!isFinite(n) || (type === 'integer' && !Number.isInteger(n))) throw new Error(`${name}: expected ${type}`);
      args[name] = n;
    } else if (type === 'string') args[name] = v;
    else {
      try {
        args[name] = JSON.parse(v);
      } catch {
        throw new Error(`${name}: not valid JSON`);
      }
    }
  }
  return args;
}

function TryIt({ tool }) {
  const [values, setValues] = useState({});
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    setValues({});
    setResult(null);
    setError(null);
  }, [tool.full]);
  const schema = tool.inputSchema || {};
  const required = new Set(schema.required || []);
  const call = async (ev) => {
    ev.preventDefault();
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      const args = toArguments(schema, values);
      const started = performance.now();
      const r = await api('POST', `/api/v1/tools/${encodeURIComponent(tool.client)}/${encodeURIComponent(tool.name)}`, { arguments: args });
      setResult({ value: r, ms: performance.now() - started });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const text = result && Array.isArray(result.value.content) ? result.value.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n') : '';
  return html`<form class="tryit" onSubmit=${call} id="tryit-form">
    <h3>Try it</h3>
    ${Object.entries(schema.properties || {}).map(([name, s]) => html`<${Field} key=${name} name=${name} schema=${s} required=${required.has(name)} value=${values[name]} onInput=${(v) => setValues((old) => ({ ...old, [name]: v }))} />`)}
    <button type="submit" disabled=${busy}>Call ${tool.full}</button>
    <${ErrorBox} error=${error} />
    ${result ? html`<div class="result" id="tool-result">
      <div class="muted">${result.value.isError ? 'the tool reported an error · ' : ''}${result.ms.toFixed(0)} ms</div>
      ${text ? html`<pre class="result-text">${text}</pre>` : ''}
      <details><summary>Raw result</summary><${Json} value=${result.value} /></details>
    </div>` : ''}
  </form>`;
}

export function Tools() {
  const [tools, setTools] = useState(null);
  const [error, setError] = useState(null);
  const [client, setClient] = useState('');
  const [query, setQuery] = useState('');
  const [selected, setSelected] = useState(null);
  useEffect(() => {
    (async () => {
      try {
        const list = await api('GET', '/api/v1/tools?limit=1000');
        const details = await Promise.all(list.tools.map((t) => api('GET', `/api/v1/tools/${encodeURIComponent(t.name)}`)));
        const all = details.flatMap((d) => (d.mcp_tools || []).map((m) => ({ ...m, client: d.name, full: `${d.name}-${m.name}` })));
        setTools(all);
        const want = new URLSearchParams(location.hash.split('?')[1] || '').get('tool');
        if (want) setSelected(all.find((t) => t.full === want) || null);
      } catch (err) {
        setError(err);
      }
    })();
  }, []);
  const clients = useMemo(() => [...new Set((tools || []).map((t) => t.client))], [tools]);
  const shown = (tools || []).filter((t) => (client === '' || t.client === client) && (query === '' || t.full.toLowerCase().includes(query.toLowerCase())));
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!tools) return html`<p class="muted">Loading the catalogue…</p>`;
  return html`<div class="split">
    <div class="list">
      <div class="filters">
        <select id="tool-client" value=${client} onChange=${(e) => setClient(e.target.value)}>
          <option value="">all upstreams</option>
          ${clients.map((c) => html`<option value=${c}>${c}</option>`)}
        </select>
        <input id="tool-filter" placeholder="filter by name" value=${query} onInput=${(e) => setQuery(e.target.value)} />
      </div>
      <div class="muted">${shown.length} of ${tools.length} tools</div>
      <ul class="tools">
        ${shown.map((t) => html`<li key=${t.full}><a href=${`#/tools?tool=${encodeURIComponent(t.full)}`} class=${selected && selected.full === t.full ? 'on' : ''} data-tool=${t.full} onClick=${() => setSelected(t)}>${t.full}</a></li>`)}
      </ul>
    </div>
    <div class="detail">
      ${selected
        ? html`<h2>${selected.full}</h2>
            <p>${selected.description}</p>
            <${TryIt} tool=${selected} />
            <details open><summary>inputSchema</summary><${Json} value=${selected.inputSchema} /></details>
            ${selected.outputSchema ? html`<details><summary>outputSchema</summary><${Json} value=${selected.outputSchema} /></details>` : ''}`
        : html`<p class="muted">Choose a tool.</p>`}
    </div>
  </div>`;
}
