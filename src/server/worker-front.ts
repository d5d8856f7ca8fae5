/**
 * The program of one `server.workers` thread: a uWS `App` listening on the gateway's port beside
 * the owner's (SO_REUSEPORT: the kernel spreads connections over the listen sockets by a hash of
 * the 4-tuple, https://man7.org/linux/man-pages/man7/socket.7.html). It parses HTTP and WebSocket
 * traffic and carries every request, upgrade and message to the owner thread over its
 * `MessagePort` (see `worker-protocol.ts`); the owner answers through its own routes, access gate
 * and handlers, and this thread writes the answer. Nothing of the gateway's state lives here.
 *
 * Started by `WorkerPool` (`worker-pool.ts`) with {@link WorkerSettings} as `workerData`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { HttpRequest, HttpResponse, us_listen_socket, us_socket_context_t, WebSocket } from 'uWebSockets.js';
import { loadNativeUws } from './uws.js';
import { Outbox, packFromWorker, unpackToWorker, type FlatHeaders, type FromWorker, type ToWorker, type Wire, type WorkerSettings } from './worker-protocol.js';
import { workerCall } from './worker-mcp.js';
import { WorkerWsDecoder } from './worker-ws.js';
import { gzipFrame } from '../codecs/mcpw.js';
import type { WorkerMcpState } from '../handlers/mcp/worker-calls.js';

/**
 * An agent socket's frame of this many bytes or more is transferred to the owner, a smaller one
 * copied: for small buffers the copy is cheaper for the receiving thread (measured with 80 bytes:
 * ≈ 2 µs copied against ≈ 3 µs transferred per message).
 */
const TRANSFER_BYTES = 16 * 1024;

/** A request body is sent whole when it ends within this many bytes, else in parts as it arrives. */
const WHOLE_BODY_BYTES = 64 * 1024;

interface Pending {
  readonly res: HttpResponse;
  aborted: boolean;
  ended: boolean;
  congested: boolean;
  backlogBytes: number;
  /** The request line and headers, until its body has gone to the owner. */
  head?: RequestHead | undefined;
  /** A request sent as an MCP call, in case the owner answers `carry`: its head and its body. */
  held?: { readonly head: RequestHead; readonly body: Uint8Array } | undefined;
  /** Upgrades only: what `res.upgrade` needs once the owner admits it. */
  readonly upgrade?: { readonly key: string; readonly extensions: string; readonly context: us_socket_context_t };
}

interface SocketData {
  id: number;
}

/** What a `req` message carries besides the body and the remote address. */
interface RequestHead {
  readonly id: number;
  readonly method: string;
  readonly url: string;
  readonly query: string;
  readonly headers: FlatHeaders;
}

/** `bytes` in an `ArrayBuffer` of their own, to transfer (copied out of a shared one such as Node's Buffer pool). */
function ownBuffer(bytes: Uint8Array): ArrayBuffer {
  const b = bytes.buffer as ArrayBuffer;
  if (bytes.byteOffset === 0 && bytes.byteLength === b.byteLength) return b;
  return b.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
}

function headersOf(req: HttpRequest): FlatHeaders {
  const out: FlatHeaders = [];
  req.forEach((k, v) => {
    out.push(k, v);
  });
  return out;
}

/** A copy of `chunk` that owns its memory (uWS reuses a chunk's memory after the callback). */
function copyOf(chunk: ArrayBuffer): ArrayBuffer {
  return chunk.slice(0);
}

function run(port: NonNullable<typeof parentPort>, settings: WorkerSettings): void {
  const uws = loadNativeUws();
  const outbox = new Outbox<FromWorker>((batch, transfer) => port.postMessage(batch, transfer), packFromWorker);
  const post = (m: FromWorker, transfer?: ArrayBuffer[]): void => outbox.push(m, transfer);
  const pending = new Map<number, Pending>();
  const sockets = new Map<number, WebSocket<SocketData>>();
  let nextId = 1;
  let listenSocket: us_listen_socket | undefined;
  /** The owner's state for deciding MCP calls here; none: every request is carried. */
  let mcpState: WorkerMcpState | undefined;
  const remoteOf = (res: HttpResponse): string => Buffer.from(res.getRemoteAddressAsText()).toString();

  /**
   * Request `id` is over: forgotten, and what it held let go at once. uWS keeps a request's
   * `onAborted`/`onData` handlers (and so what they reach) alive after the response has ended;
   * measured here, a finished request that still reached its head and body made V8 promote
   * ≈ 17 % of this thread's young allocations to the old generation, against ≈ 4 % without.
   */
  const forget = (id: number): void => {
    const p = pending.get(id);
    if (p === undefined) return;
    pending.delete(id);
    p.head = undefined;
    p.held = undefined;
  };

  const onRequest = (res: HttpResponse, req: HttpRequest): void => {
    const id = nextId++;
    const p: Pending = { res, aborted: false, ended: false, congested: false, backlogBytes: 0, head: undefined, held: undefined };
    pending.set(id, p);
    res.onAborted(() => {
      p.aborted = true;
      forget(id);
      post({ t: 'abort', id });
    });
    const method = req.getCaseSensitiveMethod().toUpperCase();
    const first: RequestHead = { id, method, url: req.getUrl(), query: req.getQuery() ?? '', headers: headersOf(req) };
    if (method !== 'POST' && method !== 'PUT' && method !== 'PATCH') {
      post({ t: 'req', ...first, remote: remoteOf(res), body: undefined, more: false });
      return;
    }
    // the handlers below reach the head through `p` only, so `forget` lets it go
    p.head = first;
    // the MCP fast path: a request decided here goes as one call; its body is kept for a `carry`
    const candidate = mcpState !== undefined && first.url === '/mcp' && method === 'POST';
    const parts: Buffer[] = [];
    let size = 0;
    let streaming = false;
    res.onData((chunk, isLast) => {
      if (p.ended || p.aborted) return;
      if (streaming) {
        const c = copyOf(chunk);
        post({ t: 'data', id, chunk: c, last: isLast }, [c]);
        return;
      }
      // a copy (uWS reuses the chunk's memory after this callback); a small one in Node's Buffer pool,
      // which costs far less than an ArrayBuffer of its own per request
      const bytes = Buffer.from(new Uint8Array(chunk));
      size += bytes.byteLength;
      if (!isLast && size <= WHOLE_BODY_BYTES) {
        parts.push(bytes);
        return;
      }
      let body = bytes;
      if (parts.length > 0) {
        parts.push(bytes);
        body = Buffer.concat(parts, size);
        parts.length = 0;
      }
      streaming = !isLast;
      const head = p.head;
      if (head === undefined) return;
      p.head = undefined;
      const call = isLast && candidate && mcpState !== undefined ? workerCall(mcpState, id, head.headers, body, Date.now()) : undefined;
      if (call !== undefined) {
        p.held = { head, body };
        post(call);
        return;
      }
      const own = ownBuffer(body);
      post({ t: 'req', ...head, remote: remoteOf(res), body: own, more: !isLast }, [own]);
    });
  };

  const write = (m: Extract<ToWorker, { t: 'res' }>): void => {
    const p = pending.get(m.id);
    if (p === undefined || p.aborted || p.ended) return;
    const res = p.res;
    let ok = true;
    res.cork(() => {
      if (m.status !== undefined) res.writeStatus(m.status);
      const h = m.headers;
      if (h !== undefined) for (let i = 0; i + 1 < h.length; i += 2) res.writeHeader(h[i] as string, h[i + 1] as string);
      if (m.end) {
        p.ended = true;
        forget(m.id);
        if (m.noBody) res.endWithoutBody(0, m.close);
        else res.end(m.chunk, m.close);
      } else if (m.chunk !== undefined) {
        ok = res.write(m.chunk);
      }
    });
    if (m.end || m.chunk === undefined) return;
    // the owner does not see this socket's backpressure: a stream the client does not read is closed here
    if (p.congested) {
      p.backlogBytes += typeof m.chunk === 'string' ? Buffer.byteLength(m.chunk) : m.chunk.byteLength;
      if (p.backlogBytes > settings.maxSseBacklogBytes) {
        p.ended = true;
        forget(m.id);
        res.close();
        post({ t: 'abort', id: m.id });
      }
    } else if (!ok) {
      p.congested = true;
      res.onWritable(() => {
        p.congested = false;
        p.backlogBytes = 0;
        return true;
      });
    }
  };

  const app = uws.App();
  for (const route of settings.ws) {
    // an MCP agent path: frames decoded here once the owner has enabled the fast path (its first mcp-state)
    const decoder = route.decode === undefined ? undefined : new WorkerWsDecoder(route.decode.maxPayloadBytes);
    app.ws<SocketData>(route.path, {
      maxPayloadLength: route.maxPayloadLength,
      idleTimeout: route.idleTimeoutSeconds,
      maxBackpressure: route.maxBackpressure,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => {
        const id = nextId++;
        const p: Pending = { res, aborted: false, ended: false, congested: false, backlogBytes: 0, upgrade: { key: req.getHeader('sec-websocket-key'), extensions: req.getHeader('sec-websocket-extensions'), context } };
        pending.set(id, p);
        res.onAborted(() => {
          p.aborted = true;
          forget(id);
          post({ t: 'abort', id });
        });
        post({ t: 'upgrade', id, url: req.getUrl(), query: req.getQuery() ?? '', headers: headersOf(req), remote: remoteOf(res) });
      },
      open: (ws) => {
        sockets.set(ws.getUserData().id, ws);
      },
      message: (ws, message, isBinary) => {
        if (decoder !== undefined && mcpState !== undefined) {
          decoded(ws, decoder, message, isBinary);
          return;
        }
        const data = copyOf(message);
        post({ t: 'ws-msg', id: ws.getUserData().id, data, binary: isBinary }, [data]);
      },
      drain: (ws) => {
        post({ t: 'ws-buffered', id: ws.getUserData().id, bytes: ws.getBufferedAmount() });
      },
      close: (ws, code, message) => {
        const id = ws.getUserData().id;
        sockets.delete(id);
        const reason = copyOf(message);
        post({ t: 'ws-closed', id, code, reason }, [reason]);
      },
    });
  }
  app.any('/*', onRequest);

  /** A valid MCPW frame to the owner: a small one copied (cheaper to receive than a transferred one), a large one transferred. */
  const checked = (id: number, data: ArrayBuffer, inflated: boolean): void => {
    if (data.byteLength < TRANSFER_BYTES) post({ t: 'ws-checked', id, data, inflated });
    else post({ t: 'ws-checked', id, data, inflated }, [data]);
  };

  /** A frame of an agent socket: answered here when it is bad or a control frame, else it goes to the owner. */
  const decoded = (ws: WebSocket<SocketData>, decoder: WorkerWsDecoder, message: ArrayBuffer, isBinary: boolean): void => {
    const out = decoder.decode(message, isBinary);
    switch (out.kind) {
      case 'text':
        post({ t: 'ws-checked', id: ws.getUserData().id, data: out.text, inflated: false });
        return;
      case 'frame':
        checked(ws.getUserData().id, copyOf(message), false);
        return;
      case 'inflated':
        // encodeFrame's bytes may be a view of msgpackr's shared buffer (a Buffer: its slice() is a view too): copied
        checked(ws.getUserData().id, new Uint8Array(out.frame).buffer, true);
        return;
      case 'send':
        ws.send(out.data, out.binary);
        if (out.close !== undefined) ws.end(out.close.code, out.close.reason);
        return;
      case 'close':
        ws.end(out.code, out.reason);
        return;
      case 'none':
        return;
    }
  };

  port.on('message', (batch: Wire<ToWorker>) => {
    for (const m of batch) {
      if (typeof m === 'string') unpackToWorker(m, handle);
      else handle(m);
    }
  });

  function handle(m: ToWorker): void {
    switch (m.t) {
      case 'res':
        write(m);
        return;
      case 'rpc': {
        const p = pending.get(m.id);
        if (p === undefined || p.aborted || p.ended) return;
        p.ended = true;
        forget(m.id);
        const res = p.res;
        res.cork(() => res.writeStatus('200 OK').writeHeader('Content-Type', 'application/json').end(m.body));
        return;
      }
      case 'carry': {
        const p = pending.get(m.id);
        const held = p?.held;
        if (p === undefined || held === undefined) return;
        p.held = undefined;
        if (p.aborted || p.ended) return;
        const body = ownBuffer(held.body);
        post({ t: 'req', ...held.head, remote: remoteOf(p.res), body, more: false }, [body]);
        return;
      }
      case 'mcp-state':
        mcpState = m.state;
        return;
      case 'res-close': {
        const p = pending.get(m.id);
        forget(m.id);
        if (p !== undefined && !p.aborted && !p.ended) {
          p.ended = true;
          p.res.close();
        }
        return;
      }
      case 'upgrade-ok': {
        const p = pending.get(m.id);
        forget(m.id);
        if (p === undefined || p.aborted || p.upgrade === undefined) {
          // the client left while the owner decided: the owner forgets the socket it opened
          post({ t: 'ws-closed', id: m.id, code: 1006, reason: new ArrayBuffer(0) });
          return;
        }
        const u = p.upgrade;
        p.res.cork(() => p.res.upgrade<SocketData>({ id: m.id }, u.key, m.protocol, u.extensions, u.context));
        return;
      }
      case 'ws-send': {
        const ws = sockets.get(m.id);
        if (ws === undefined) return;
        // an MCPW reply the owner left for this thread to compress (zlib level 1, on this thread's loop)
        const data = m.gzip === true && typeof m.data !== 'string' ? gzipFrame(m.data) : m.data;
        // 1: sent, 0: buffered (backpressure), 2: dropped (over maxBackpressure)
        if (ws.send(data, m.binary) !== 1) post({ t: 'ws-buffered', id: m.id, bytes: ws.getBufferedAmount() });
        return;
      }
      case 'ws-end':
        sockets.get(m.id)?.end(m.code, m.reason);
        return;
      case 'ws-close':
        sockets.get(m.id)?.close();
        return;
      case 'ws-ping':
        sockets.get(m.id)?.ping();
        return;
      case 'stop-listening':
        if (listenSocket !== undefined) uws.us_listen_socket_close(listenSocket);
        listenSocket = undefined;
        return;
      case 'exit':
        end(1001, 'shutting down');
        return;
      case 'fail':
        setImmediate(() => {
          throw new Error(m.message);
        });
        return;
    }
  }

  /** Longest wait for `/ws` peers to answer the close frame when the thread ends, ms (then closed forcibly). */
  const WS_END_WAIT_MS = 1_000;
  /**
   * Closes every socket of this thread and lets it end. A thread that ends (or is terminated)
   * while uWS still holds a socket aborts the whole process (`uv_loop_close() while having open
   * handles`), so this runs before every end, including one by an uncaught exception.
   */
  let ending = false;
  const end = (code: number, reason: string): void => {
    if (ending) return;
    ending = true;
    if (listenSocket !== undefined) uws.us_listen_socket_close(listenSocket);
    listenSocket = undefined;
    for (const ws of [...sockets.values()]) ws.end(code, reason);
    for (const p of pending.values()) if (!p.aborted && !p.ended) p.res.close();
    pending.clear();
    outbox.flush();
    // `end` only starts the closing handshake: uWS frees a socket when its close handler has run.
    // Wait for that (a peer that does not answer within WS_END_WAIT_MS is closed forcibly), close
    // what else the app holds, then one more turn for the handles' close callbacks, then let the
    // thread end.
    const deadline = Date.now() + WS_END_WAIT_MS;
    const release = (): void => {
      if (sockets.size > 0 && Date.now() < deadline) {
        setTimeout(release, 5);
        return;
      }
      for (const ws of [...sockets.values()]) ws.close();
      // idle keep-alive HTTP connections are not ours to list: uWS's `App.close()` (in the native
      // module, missing from its typings) closes every socket of the app; a thread ending with one
      // still open would abort the process
      (app as unknown as { close(): void }).close();
      setImmediate(() => port.close());
    };
    release();
  };
  process.on('uncaughtException', (err) => {
    post({ t: 'failed', error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    end(1011, 'worker thread failed');
  });

  // uWS.js accepts (host, port, options, cb); its typings only declare (port, options, cb). Options 0: SO_REUSEPORT.
  const listen = app.listen.bind(app) as unknown as (host: string, port: number, options: number, cb: (socket: us_listen_socket | false) => void) => void;
  listen(settings.host, settings.port, 0, (socket) => {
    if (socket) listenSocket = socket;
    post({ t: 'listening', ok: socket !== false });
  });
}

if (parentPort !== null) run(parentPort, workerData as WorkerSettings);
