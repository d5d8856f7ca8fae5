/**
 * `GET /api/log-level` → `{"level"}`; `PUT /api/log-level` with `{"level": "debug"|"info"|"warn"|"error"|"silent"}`
 * changes the gateway's log level at once, for every component (admin only, like the rest of the
 * management API). The change lasts until the next restart; the config's `log_level` (or env
 * `LOG_LEVEL`) is the level at start.
 */
import * as t from 'io-ts';
import { decodeBody } from '../../codecs/schema.js';
import type { Logger } from '../../log/logger.js';
import { ok, type RestRouter } from '../rest/router.js';

const LogLevelBody = t.exact(t.type({ level: t.keyof({ debug: null, info: null, warn: null, error: null, silent: null }) }));

export function registerLogLevel(router: RestRouter, log: Logger): void {
  router
    .on('GET', '/api/log-level', () => ok({ level: log.level() }), {
      summary: 'The log level in force',
      tag: 'management',
      access: 'admin',
      responses: { 200: { description: '`{level}`', schema: { type: 'object', required: ['level'] } } },
    })
    .on(
      'PUT',
      '/api/log-level',
      (req) => {
        const { level } = decodeBody(LogLevelBody, req.body);
        const before = log.level();
        log.setLevel(level);
        log.info('log level changed', { from: before, to: level });
        return ok({ level });
      },
      {
        summary: 'Change the log level at run time (every component, until restart)',
        tag: 'management',
        access: 'admin',
        body: LogLevelBody,
        responses: { 200: { description: '`{level}`', schema: { type: 'object', required: ['level'] } }, 400: { description: 'Not a level' } },
      },
    );
}
