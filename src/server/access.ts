/** How the uWS server asks the access gate about a request; see `src/auth/gate.ts`. */
import type { RequestAuth } from '../base/access.js';
import type { HeaderList, HttpEffect, HttpInput } from '../base/http.js';

/**
 * The access decision for a request, made from its headers before the handler runs.
 * `reject` is answered as is; otherwise `auth` is attached to the input. `headers` go on every
 * reply of the request (`X-RateLimit-*`).
 */
export interface AccessDecision {
  readonly auth?: RequestAuth;
  readonly reject?: HttpEffect;
  readonly headers: HeaderList;
}

/** Decides a request from its method, path and headers; synchronous when no I/O is needed. */
export type AccessCheck = (input: HttpInput) => AccessDecision | Promise<AccessDecision>;
