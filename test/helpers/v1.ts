/**
 * A real gateway for the REST `/api/v1` tests: auth on, the admin via env, two API keys
 * of two tenants (`acme`, `globex`), real upstreams, real HTTP.
 */
import { send, startTestGateway, type TestGateway } from './gateway.js';

export const ADMIN_PASSWORD = 'v1-test-admin-password';

export interface V1Gateway {
  readonly gw: TestGateway;
  /** API key of tenant `acme`. */
  readonly keyA: string;
  /** API key of tenant `globex`. */
  readonly keyB: string;
  /** Basic credentials of the admin. */
  readonly admin: string;
  /** A JSON request with `Authorization: Bearer <key>` (or the admin's Basic when key is `admin`). */
  call(method: string, path: string, key: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; headers: Headers; json: Record<string, unknown>; text: string }>;
}

/**
 * Starts the gateway with the given upstream entries and extra config sections (e.g.
 * `{webhooks: {github_secret}}`), creates the two tenants' keys through the admin API.
 */
export async function startV1Gateway(mcpClients: Record<string, unknown>[], extra: Record<string, unknown> = {}): Promise<V1Gateway> {
  const gw = await startTestGateway(
    mcpClients,
    {},
    { auth: { disabled: false, admin: { username: 'admin' }, rate_limits: { burst_per_minute: 100_000, requests_per_hour: 1_000_000, tool_executions_per_hour: 100_000 } }, ...extra },
    { TRIBUTARY_ADMIN_PASSWORD: ADMIN_PASSWORD },
  );
  const admin = `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`;
  const call: V1Gateway['call'] = async (method, path, key, body, headers = {}) => {
    const r = await send(`${gw.url}${path}`, {
      method,
      headers: {
        authorization: key === 'admin' ? admin : `Bearer ${key}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    return { status: r.status, headers: r.headers, json: (r.json ?? {}) as Record<string, unknown>, text: r.text };
  };
  const mk = async (tenant: string): Promise<string> => {
    const r = await call('POST', '/api/auth/keys', 'admin', { name: `tenant ${tenant}`, tenant_id: tenant });
    if (r.status !== 201) throw new Error(`key creation failed: ${r.status} ${r.text}`);
    return r.json['secret'] as string;
  };
  return { gw, keyA: await mk('acme'), keyB: await mk('globex'), admin, call };
}
