/**
 * The REST view of orchestration tasks (developer-mesh REST API,
 * https://github.com/developer-mesh/developer-mesh/blob/main/docs/api-reference/mcp-server-reference.md):
 * `GET /api/v1/tasks` and `GET /api/v1/tasks/:id`, read from LevelDB after the batch writer is
 * flushed (read-your-writes), scoped to the caller's tenant.
 */
import { GatewayError } from '../../base/errors.js';
import type { Store } from '../../store/open.js';
import type { TenantRepository } from '../../store/tenant-repo.js';
import { paginate, PAGE_QUERY, type V1Api } from '../rest/v1-api.js';
import { TASK_LIST_SCHEMA, TASK_SCHEMA, TASK_STATUSES, type TaskRecord } from './records.js';

function summary(r: TaskRecord): Omit<TaskRecord, 'history'> {
  const { history: _h, ...rest } = r;
  return rest;
}

/**
 * Registers `GET /api/v1/tasks?status&agent_id&type&limit&offset` → `{tasks, total, limit,
 * offset}` (creation order, without `history`) and `GET /api/v1/tasks/:id` → the task with its
 * history, or 404 NOT_FOUND; both scoped to the caller's tenant. 400 VALIDATION_ERROR for a bad
 * `status`, `limit` or `offset`.
 */
export function registerTaskRoutes(api: V1Api, store: Store, tasks: TenantRepository<TaskRecord>): void {
  api.on(
    'GET',
    '/api/v1/tasks',
    {
      summary: 'List the tenant’s orchestration tasks (in creation order, without history)',
      tag: 'tasks',
      query: {
        status: { description: `Only tasks in this status: ${TASK_STATUSES.join(', ')}`, schema: { type: 'string', enum: [...TASK_STATUSES] } },
        agent_id: { description: 'Only tasks held last by this agent', schema: { type: 'string' } },
        type: { description: 'Only tasks of this type', schema: { type: 'string' } },
        ...PAGE_QUERY,
      },
      responses: { 200: { description: 'A page of tasks', schema: TASK_LIST_SCHEMA }, 400: { description: 'Bad status, limit or offset: `details.problems` names it' } },
    },
    async (req) => {
      const status = req.query.get('status');
      if (status !== null && status !== '' && !(TASK_STATUSES as readonly string[]).includes(status)) {
        throw new GatewayError('VALIDATION_ERROR', `status must be one of ${TASK_STATUSES.join(', ')}`, { problems: [`status: expected ${TASK_STATUSES.join('|')}, got ${JSON.stringify(status)}`] });
      }
      const agentId = req.query.get('agent_id');
      const type = req.query.get('type');
      await store.writer.flush();
      const all = (await tasks.list(req.tenant)).filter(
        (r) => (status === null || status === '' || r.status === status) && (agentId === null || agentId === '' || r.agent_id === agentId) && (type === null || type === '' || r.type === type),
      );
      all.sort((a, b) => a.seq - b.seq);
      const page = paginate(all, req.query);
      return { status: 200, body: { tasks: page.items.map(summary), total: page.total, limit: page.limit, offset: page.offset } };
    },
  );
  api.on(
    'GET',
    '/api/v1/tasks/:id',
    { summary: 'One orchestration task, with its history', tag: 'tasks', responses: { 200: { description: 'The task', schema: TASK_SCHEMA }, 404: { description: 'No such task in the caller’s tenant' } } },
    async (req) => {
      const id = req.params['id'] ?? '';
      await store.writer.flush();
      const rec = await tasks.get(req.tenant, id);
      if (rec === undefined) throw new GatewayError('NOT_FOUND', 'Task not found', { id });
      return { status: 200, body: rec };
    },
  );
}
