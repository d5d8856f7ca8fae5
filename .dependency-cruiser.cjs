/**
 * Layering rule (docs/ARCHITECTURE.md, "Layers"). Folders of src/ form one stack, bottom first;
 * a module may import modules of its own folder and of folders below it, nothing above:
 *
 *   base → log → config → codecs → streams → store → auth → telemetry → upstreams → providers
 *        → handlers → cluster → server → src/*.ts (gateway.ts wiring, main.ts)
 *
 * `server` sits above `handlers` but does not import them (the wiring in gateway.ts hands
 * handlers to the server); handlers must never import server.
 *
 * Inside handlers/, each sub-folder (mcp, rest-v1, agents, ...) is one surface; surfaces do not
 * import each other's internals. Shared by all of them: the files directly in handlers/ (the
 * tool log, tool execution, event recording, WebSocket feeds) and handlers/rest/ (the REST router
 * kit). Named public entry points of a surface are listed in HANDLER_PUBLIC below.
 */
const LAYERS = ['base', 'log', 'config', 'codecs', 'streams', 'store', 'auth', 'telemetry', 'upstreams', 'providers', 'handlers', 'cluster', 'server'];

/** Modules of one handler surface that other handler code may import (each with its reason). */
const HANDLER_PUBLIC = [
  // the REST router kit every REST surface registers on
  '^src/handlers/rest/',
  // tool modes (search, code) serve an MCP session through these hooks
  '^src/handlers/mcp/session[.]ts$',
  '^src/handlers/mcp/tool-mode-hooks[.]ts$',
];

const layerRules = LAYERS.map((layer, i) => ({
  from: { path: `^src/${layer}/` },
  to: { path: `^src/(${LAYERS.slice(0, i + 1).join('|')})/` },
}));

module.exports = {
  // Every import of one of our modules must match one rule here; anything else is an error.
  allowed: [
    // packages and Node built-ins
    { from: {}, to: { pathNot: '^src/' } },
    ...layerRules,
    // the composition root (gateway.ts, main.ts) may import every layer
    { from: { path: '^src/[^/]+[.]ts$' }, to: { path: '^src/' } },
  ],
  allowedSeverity: 'error',
  forbidden: [
    {
      name: 'no-circular',
      comment: 'no module-level import cycles',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-folder-cycles',
      comment: 'no import cycles between folders (any depth, handler surfaces included)',
      severity: 'error',
      scope: 'folder',
      from: {},
      to: { circular: true },
    },
    {
      name: 'handler-surfaces-independent',
      comment: "a handler surface (handlers/<name>/) does not import another surface's internals",
      severity: 'error',
      from: { path: '^src/handlers/([^/]+)/' },
      to: { path: '^src/handlers/[^/]+/', pathNot: ['^src/handlers/$1/', ...HANDLER_PUBLIC] },
    },
    {
      name: 'shared-handlers-not-into-surfaces',
      comment: "shared handler modules (files directly in handlers/) do not import a surface's internals",
      severity: 'error',
      from: { path: '^src/handlers/[^/]+[.]ts$' },
      to: { path: '^src/handlers/[^/]+/', pathNot: HANDLER_PUBLIC },
    },
    {
      name: 'lower-layers-not-to-config-loader',
      comment: 'config/load.ts reads files and the environment; lower layers use config/schema.ts and pure resolvers such as config/resilience.ts',
      severity: 'error',
      from: { path: '^src/(base|log|codecs|streams|store|auth|telemetry|upstreams|providers)/' },
      to: { path: '^src/config/load[.]ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
