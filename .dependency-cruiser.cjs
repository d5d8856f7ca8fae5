/** Layering rule from DESIGN.md §4: server → handlers → (streams, codecs, upstreams, store, auth). */
module.exports = {
  forbidden: [
    {
      name: 'core-not-up-to-handlers-or-server',
      comment: 'streams, codecs and store import nothing from handlers or server',
      severity: 'error',
      from: { path: '^src/(streams|codecs|store)/' },
      to: { path: '^src/(handlers|server)/' },
    },
    {
      name: 'upstreams-auth-not-up',
      comment: 'upstreams, auth and model providers sit below handlers and server',
      severity: 'error',
      from: { path: '^src/(upstreams|auth|providers)/' },
      to: { path: '^src/(handlers|server)/' },
    },
    {
      name: 'handlers-not-up-to-server',
      comment: 'handlers return effects; they do not reach into the uWS server layer',
      severity: 'error',
      from: { path: '^src/handlers/' },
      to: { path: '^src/server/' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
