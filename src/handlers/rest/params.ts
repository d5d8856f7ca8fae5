/** Query-parameter readers shared by the REST routes. */
import { GatewayError } from '../../base/errors.js';
import type { RestRequest } from './router.js';

/** Reads an integer query parameter within bounds. @throws GatewayError VALIDATION_ERROR. */
export function intParam(req: RestRequest, name: string, fallback: number, min: number, max: number): number {
  const raw = req.query.get(name);
  if (raw === null || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new GatewayError('VALIDATION_ERROR', `Query parameter ${name} must be an integer from ${min} to ${max}`, { problems: [`${name}: got ${JSON.stringify(raw)}`] });
  }
  return n;
}
