/**
 * The ceiling for `npm run bench`: a bare uWebSockets.js server answering POST /mcp with a fixed
 * JSON-RPC `tools/call` result of the same shape the gateway returns for `demo-echo`. It reads the
 * body to its end (as any real server must), but does not parse it.
 *
 * Usage: node --import tsx bench/raw-uws.ts [port]   (port 0 = any free port)
 * Prints one line `{"listening":PORT}` on stdout once bound; exits on SIGTERM/SIGINT.
 */
import { loadNativeUws } from '../src/server/uws.js';
import { announceListening } from './procs.js';

const uws = loadNativeUws();
const port = Number(process.argv[2] ?? '0');

const BODY = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'Echo: hello' }] } });

const app = uws
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
  .get('/health', (res) => {
    res.cork(() => {
      res.writeStatus('200 OK').writeHeader('Content-Type', 'application/json').end('{"status":"healthy"}');
    });
  });

announceListening(uws, app, port, 'raw-uws');
