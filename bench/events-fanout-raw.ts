/**
 * The baseline for `npm run bench:events`: a bare uWebSockets.js server doing topic pub/sub.
 *
 * - `ws://…/events`: every connection is subscribed to one topic on open; a text message from the
 *   client (the same `{"type":"subscribe",…}` the gateway gets) is answered with
 *   `{"type":"subscribed"}`, so the bench's subscribers speak to both servers the same way.
 * - `POST /publish`: reads the body to its end (not parsed), then `app.publish`es ONE event to the
 *   topic and answers 200. The event is the gateway's own event JSON (env `RAW_EVENT_TEMPLATE`, a
 *   `ToolInvocationCompleted` captured from the gateway in the same run) with a fresh `seq` and
 *   `timestamp` (ISO-8601, stamped at publish, like the gateway's bus), so payloads have the same
 *   size and key order and the subscribers measure latency the same way.
 * - Socket limits as the gateway's `/api/ws/events`: maxBackpressure 8 MiB, idle timeout 120 s,
 *   automatic pings, no compression.
 *
 * Usage: node --import tsx bench/events-fanout-raw.ts [port]   (port 0 = any free port)
 * Prints one line `{"listening":PORT}` on stdout once bound; exits on SIGTERM/SIGINT.
 */
import { loadNativeUws } from '../src/server/uws.js';
import { announceListening } from './procs.js';

const uws = loadNativeUws();
const port = Number(process.argv[2] ?? '0');
const TOPIC = 'events';

const template = JSON.parse(process.env['RAW_EVENT_TEMPLATE'] ?? '{"event_type":"ToolInvocationCompleted"}') as Record<string, unknown>;
delete template['seq'];
delete template['timestamp'];

let seq = 0;
let stampMs = -1;
let stamp = '';
const ACK = JSON.stringify({ type: 'subscribed' });
const OK = '{"ok":true}';

const app = uws.App();
app
  .ws('/events', {
    maxPayloadLength: 1024 * 1024,
    idleTimeout: 120,
    maxBackpressure: 8 * 1024 * 1024,
    sendPingsAutomatically: true,
    open: (ws) => {
      ws.subscribe(TOPIC);
    },
    message: (ws) => {
      ws.send(ACK, false);
    },
  })
  .post('/publish', (res) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    res.onData((_chunk, isLast) => {
      if (!isLast || aborted) return;
      // the same stamping as the gateway's EventBus.publish: ms-resolution ISO time, cached per ms
      const now = Date.now();
      if (now !== stampMs) {
        stampMs = now;
        stamp = new Date(now).toISOString();
      }
      app.publish(TOPIC, JSON.stringify({ ...template, seq: ++seq, timestamp: stamp }), false);
      res.cork(() => {
        res.writeStatus('200 OK').writeHeader('Content-Type', 'application/json').end(OK);
      });
    });
  })
  .get('/health', (res) => {
    res.cork(() => {
      res.writeStatus('200 OK').writeHeader('Content-Type', 'application/json').end('{"status":"healthy"}');
    });
  });

announceListening(uws, app, port, 'events-fanout-raw');
