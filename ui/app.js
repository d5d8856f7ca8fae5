// The dashboard shell: session check, sign-in, navigation (routes in the URL fragment) and pages.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, html, onUnauthorized, ErrorBox } from './lib.js';
import { Overview } from './pages/overview.js';
import { Tools } from './pages/tools.js';
import { Events } from './pages/events.js';
import { ToolLog } from './pages/toollog.js';
import { Upstreams } from './pages/upstreams.js';
import { Keys } from './pages/keys.js';
import { Agents } from './pages/agents.js';

const PAGES = [
  { id: 'overview', title: 'Overview', view: Overview },
  { id: 'tools', title: 'Tools', view: Tools },
  { id: 'events', title: 'Live events', view: Events },
  { id: 'log', title: 'Tool log', view: ToolLog, admin: true },
  { id: 'upstreams', title: 'Upstreams', view: Upstreams, admin: true },
  { id: 'keys', title: 'Keys', view: Keys, admin: true },
  { id: 'agents', title: 'Agents & tasks', view: Agents },
];

function currentRoute() {
  const id = location.hash.replace(/^#\/?/, '').split('?')[0];
  return PAGES.some((p) => p.id === id) ? id : 'overview';
}

function SignIn({ onSignedIn }) {
  const [mode, setMode] = useState('password');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (ev) => {
    ev.preventDefault();
    const form = new FormData(ev.target);
    const body = mode === 'password' ? { username: form.get('username') || undefined, password: form.get('password') } : { key: form.get('key') };
    setBusy(true);
    setError(null);
    try {
      const r = await api('POST', '/api/ui/session', body);
      onSignedIn(r);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="signin">
    <h1>Tributary</h1>
    <p>Sign in with the admin password or an API key. The browser keeps only a session cookie.</p>
    <div class="tabs">
      <button class=${mode === 'password' ? 'on' : ''} onClick=${() => setMode('password')} type="button">Admin password</button>
      <button class=${mode === 'key' ? 'on' : ''} onClick=${() => setMode('key')} type="button">API key</button>
    </div>
    <form onSubmit=${submit} id="signin-form">
      ${mode === 'password'
        ? html`<label>User <input name="username" autocomplete="username" placeholder="admin" /></label>
            <label>Password <input name="password" type="password" autocomplete="current-password" required /></label>`
        : html`<label>API key or JWT <input name="key" type="password" autocomplete="off" required placeholder="trb_…" /></label>`}
      <button type="submit" disabled=${busy}>Sign in</button>
    </form>
    <${ErrorBox} error=${error} />
  </main>`;
}

function App() {
  const [state, setState] = useState({ loading: true, auth: null, session: null, error: null });
  const [route, setRoute] = useState(currentRoute());
  const load = () =>
    api('GET', '/api/ui/session').then(
      (r) => setState({ loading: false, auth: r.auth_enabled, session: r.session, error: null }),
      (err) => setState({ loading: false, auth: null, session: null, error: err }),
    );
  useEffect(() => {
    load();
    const onHash = () => setRoute(currentRoute());
    addEventListener('hashchange', onHash);
    const off = onUnauthorized(() => setState((s) => ({ ...s, session: null })));
    return () => {
      removeEventListener('hashchange', onHash);
      off();
    };
  }, []);
  if (state.loading) return html`<p class="boot">Loading…</p>`;
  if (state.error) return html`<main class="signin"><${ErrorBox} error=${state.error} /></main>`;
  if (!state.session) return html`<${SignIn} onSignedIn=${(r) => setState({ loading: false, auth: r.auth_enabled, session: r.session, error: null })} />`;
  const s = state.session;
  const admin = s.role === 'admin';
  const page = PAGES.find((p) => p.id === route);
  const signOut = async () => {
    await api('DELETE', '/api/ui/session').catch(() => undefined);
    setState({ loading: false, auth: state.auth, session: null, error: null });
  };
  return html`<div class="shell">
    <nav>
      <div class="brand">Tributary</div>
      ${PAGES.filter((p) => admin || !p.admin).map((p) => html`<a href=${`#/${p.id}`} class=${p.id === route ? 'on' : ''} data-page=${p.id}>${p.title}</a>`)}
      <div class="who">
        <div>${s.name}</div>
        <div class="muted">${s.role} · tenant ${s.tenant_id}</div>
        ${state.auth ? html`<button type="button" class="link" onClick=${signOut}>Sign out</button>` : html`<div class="muted">auth off (loopback)</div>`}
      </div>
    </nav>
    <main id="page" data-page=${page.id}>
      <h1>${page.title}</h1>
      ${page.admin && !admin ? html`<div class="error" role="alert">This page needs an admin credential.</div>` : html`<${page.view} session=${s} admin=${admin} />`}
    </main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('app'));
