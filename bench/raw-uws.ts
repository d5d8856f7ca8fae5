/**
 * The ceiling for `npm run bench`: a bare uWebSockets.js server answering POST /mcp with a fixed
 * JSON-RPC `tools/call` result of the same shape the gateway returns for `demo-echo`. It reads the
 * body to its end (as any real server must), but does not parse it.
 *
 * Usage: node --import tsx bench/raw-uws.ts [port]   (port 0 = any free port)
 * Prints one line `{"listening":PORT}` on stdout once bound; exits on SIGTERM/SIGINT.
 */
import { loadNativeUws } from '../src/server/uws.js';

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

app.listen('127.0.0.1', port, (socket) => {
  if (!socket) {
    process.stderr.write(`raw-uws: cannot listen on 127.0.0.1:${port}\n`);
    process.exit(1);
  }
  const bound = uws.us_socket_local_port(socket as unknown as Parameters<typeof uws.us_socket_local_port>[0]);
  process.stdout.write(JSON.stringify({ listening: bound }) + '\n');
});

for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(0));
