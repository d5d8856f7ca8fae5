/**
 * Server of `npm run bench:workers`: the raw uWS fixed reply of bench/raw-uws.ts (POST /mcp, body
 * read to its end, a fixed JSON-RPC result), served by N worker threads, each with its own uWS
 * `App` listening on the same port (uWS sets SO_REUSEPORT unless told to listen exclusively; the
 * kernel spreads connections over the sockets by a hash of the 4-tuple). N = 0: the main thread
 * serves, no worker thread (today's gateway).
 *
 * Usage: node --import tsx bench/workers-uws.ts PORT N
 * Prints `{"listening":PORT}` once every worker listens; exits on SIGTERM/SIGINT.
 */
import { Worker, isMainThread } from 'node:worker_threads';
import { loadNativeUws } from '../src/server/uws.js';

const BODY = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'Echo: hello' }] } });

/** What each worker thread runs: {@link serve} in CommonJS (workers evaluate it as is). */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createRequire } = require('node:module');
const uws = createRequire(workerData.root + '/package.json')('uWebSockets.js');
uws.App().post('/mcp', (res) => {
  let aborted = false;
  res.onAborted(() => { aborted = true; });
  res.onData((_chunk, isLast) => {
    if (!isLast || aborted) return;
    res.cork(() => { res.writeStatus('200 OK').writeHeader('Content-Type', 'application/json').end(workerData.body); });
  });
}).listen('127.0.0.1', workerData.port, (socket) => parentPort.postMessage(socket !== false));
`;

function serve(port: number, done: (ok: boolean) => void): void {
  const uws = loadNativeUws();
  uws
    .App()
    .post('/mcp', (res) => {
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      res.onData((_chunk, isLast) => {
        if (!isLast || aborted) return;
        res.cork(() => {
          res.writeStatus('200 OK').writeHeader('Content-Type', 'application/json').end(BODY);
        });
      });
    })
    .listen('127.0.0.1', port, (socket) => done(socket !== false));
}

if (isMainThread) {
  const port = Number(process.argv[2]);
  const n = Number(process.argv[3] ?? '0');
  const ready = (ok: boolean): void => {
    if (!ok) {
      process.stderr.write(`workers-uws: cannot listen on 127.0.0.1:${port}\n`);
      process.exit(1);
    }
  };
  if (n === 0) {
    serve(port, (ok) => {
      ready(ok);
      process.stdout.write(JSON.stringify({ listening: port }) + '\n');
    });
  } else {
    let listening = 0;
    for (let i = 0; i < n; i++) {
      // the worker runs plain JavaScript (tsx's loader does not reach worker threads): the same handler
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { port, body: BODY, root: process.cwd() } });
      w.on('message', (ok: boolean) => {
        ready(ok);
        if (++listening === n) process.stdout.write(JSON.stringify({ listening: port }) + '\n');
      });
      w.on('error', (err) => {
        process.stderr.write(`workers-uws: worker failed: ${String(err)}\n`);
        process.exit(1);
      });
    }
  }
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(0));
}
