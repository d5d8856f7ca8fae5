/**
 * `GET /api/v1/workspaces`: the caller's tenant's collaborative workspaces that are in memory
 * (have members), with their members and documents — what the dashboard shows. Workspaces without
 * members live only in LevelDB and are not listed.
 */
import type { V1Api } from '../rest/v1-api.js';
import type { WorkspaceHub } from './hub.js';

export function registerWorkspaceRoutes(api: V1Api, hub: WorkspaceHub): void {
  api.on(
    'GET',
    '/api/v1/workspaces',
    {
      summary: 'The tenant’s active workspaces (with members), their members and documents',
      tag: 'workspaces',
      responses: { 200: { description: '`{workspaces:[{workspace_id, members:[{member_id, name}], documents:[{document_id, size_bytes, locked_by}]}], total}`', schema: { type: 'object', required: ['workspaces', 'total'] } } },
    },
    (req) => {
      const workspaces = hub.active(req.tenant);
      return { status: 200, body: { workspaces, total: workspaces.length } };
    },
  );
}
