/**
 * `npm run bench:sealed-session`: what a sealed `Mcp-Session-Id` (AES-256-GCM, node:crypto) costs
 * per new session (seal) and per request served by a process that did not open the session (open
 * + check), against what one process does today in the same run: a random UUID per new session
 * and a `Map` lookup per request. A process that already holds the session does only the lookup
 * (the sealed id is opened once per process, then the session is kept).
 *
 * CPU per operation from /proc (this process, user + system), N operations per point, 3 runs,
 * the median run shown. Target (issue): open and check ≤ 2 µs; new session well under 1 ms.
 *
 * The floor of an open is node:crypto's AES-256-GCM open itself (the "of which" rows): on Node 20
 * with OpenSSL 3, `createDecipheriv` alone costs ≈ 2 µs (the cipher is looked up and its context
 * set up per call; no node:crypto API reuses a GCM context with a new nonce), and update + final
 * (decrypt, tag check) ≈ 1.5 µs more. The other AEAD opens measured here are dearer: WebCrypto's
 * `subtle.decrypt` (asynchronous, run on libuv's thread pool) and, measured outside this bench,
 * @noble/ciphers 2.4.0's `gcm` in pure JS (≈ 23 µs for this id).
 * A process that holds the session does only the `Map` lookup (the rows "session held here").
 * Environment: BENCH_SEALED_N (default 200000).
 * Profile: `node --cpu-prof --import tsx bench/sealed-session.ts`.
 */
import { createDecipheriv, createSecretKey, randomBytes, randomUUID } from 'node:crypto';
import { SessionSealer, type SealedSessionState } from '../src/handlers/mcp/sealed-session.js';

const N = Number(process.env['BENCH_SEALED_N'] ?? 200_000);
const STATE: SealedSessionState = {
  protocolVersion: '2025-06-18',
  clientCapabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } },
  clientInfo: { name: 'claude-code', version: '1.0.0' },
  owner: 'key:0f3a9c2e',
  toolMode: 'full',
  createdAt: Date.now(),
};

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** CPU µs per op of `fn` run `N` times (median of 3 runs). */
function measure(fn: (i: number) => unknown): number {
  const runs: number[] = [];
  let sink = 0;
  for (let r = 0; r < 3; r++) {
    const c0 = cpuUs();
    for (let i = 0; i < N; i++) if (fn(i) !== undefined) sink++;
    runs.push((cpuUs() - c0) / N);
  }
  if (sink < 0) console.log(sink);
  return runs.sort((a, b) => a - b)[1] as number;
}

const sealer = SessionSealer.fromBase64([SessionSealer.generateKey(), SessionSealer.generateKey()]);
const ids = Array.from({ length: 1024 }, () => sealer.seal(STATE));
const uuids = Array.from({ length: 1024 }, () => randomUUID());
const held = new Map<string, SealedSessionState>(uuids.map((u) => [u, STATE]));
const heldSealed = new Map(ids.map((u) => [u, STATE]));

// where an open's time goes: node:crypto's AES-256-GCM steps and the JSON of the state, alone
const RAW_KEY = randomBytes(32);
// as the sealer holds its keys
const KEY = createSecretKey(RAW_KEY);
const AAD = Buffer.from('ts1', 'ascii');
const probe = new SessionSealer([RAW_KEY]).seal(STATE);
const body = Buffer.from(probe.slice(probe.indexOf('.', 4) + 1), 'base64url');
const nonce = body.subarray(0, 12);
const tag = body.subarray(body.length - 16);
const cipherText = body.subarray(12, body.length - 16);
const decrypt = (): Buffer => {
  const d = createDecipheriv('aes-256-gcm', KEY, nonce, { authTagLength: 16 });
  d.setAAD(AAD);
  d.setAuthTag(tag);
  const plain = d.update(cipherText);
  d.final();
  return plain;
};
const plainText = decrypt().toString('utf8');

const rows: [string, number][] = [
  ['new session: random UUID (baseline)', measure(() => randomUUID())],
  ['new session: sealed id', measure(() => sealer.seal(STATE))],
  ['request, session held here: Map lookup of a UUID (baseline)', measure((i) => held.get(uuids[i & 1023] as string))],
  ['request, session held here: Map lookup of a sealed id', measure((i) => heldSealed.get(ids[i & 1023] as string))],
  ['request, session opened elsewhere: open + check the sealed id', measure((i) => sealer.open(ids[i & 1023] as string))],
  ['  of which: createDecipheriv alone (node:crypto)', measure(() => createDecipheriv('aes-256-gcm', KEY, nonce, { authTagLength: 16 }))],
  ['  of which: AES-256-GCM decrypt + tag check (create, AAD, tag, update, final)', measure(() => decrypt())],
  ['  of which: JSON.parse of the state', measure(() => JSON.parse(plainText) as unknown)],
];
// WebCrypto's AES-GCM open, awaited one at a time: CPU of the whole process (its thread pool too)
const webKey = await crypto.subtle.importKey('raw', RAW_KEY, 'AES-GCM', false, ['decrypt']);
const sealedBody = body.subarray(12);
const webN = Math.max(1, Math.floor(N / 10));
const webRuns: number[] = [];
for (let r = 0; r < 3; r++) {
  const c0 = cpuUs();
  for (let i = 0; i < webN; i++) await crypto.subtle.decrypt({ name: 'AES-GCM', iv: nonce, additionalData: AAD, tagLength: 128 }, webKey, sealedBody);
  webRuns.push((cpuUs() - c0) / webN);
}
rows.push(['  for comparison: WebCrypto subtle.decrypt (AES-256-GCM, asynchronous)', webRuns.sort((a, b) => a - b)[1] as number]);
console.log(`\nN = ${N} per run, median of 3 runs; id length ${(ids[0] as string).length} characters\n`);
console.log('| operation | CPU µs/op | vs baseline |');
console.log('|---|---:|---:|');
for (const [i, [name, us]] of rows.entries()) {
  const base = i < 2 ? rows[0] : rows[2];
  console.log(`| ${name} | ${us.toFixed(3)} | ${(us / (base as [string, number])[1]).toFixed(1)}× |`);
}
