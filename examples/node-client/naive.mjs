// The naive client: how most first attempts look, and what `rancherlab check-client` fails.
//
//   RANCHER_URL=https://rancher.example.com RANCHER_TOKEN_KEY=token-xxxxx:secret node naive.mjs
//
// It connects once, watches without a revision and never lists. What goes wrong:
//   - the first 1006 drop (routine in Rancher) ends it for good: no reconnect;
//   - it starts from nothing: Rancher's SQL-cache store (the default from 2.12) sends no initial snapshot, so the
//     objects that already existed are never seen; what changed while it was away is lost too;
//   - no liveness check: a silent socket would hang it for ever.
// client.mjs next to it does each of these right.

import { appendFileSync } from 'node:fs';
import WebSocket from 'ws';

const BASE = (process.env.RANCHER_URL ?? '').replace(/\/+$/, '');
const TOKEN = process.env.RANCHER_TOKEN_KEY ?? '';
const STATE_FILE = process.env.RANCHERLAB_STATE_FILE;
const TYPE = process.env.RANCHER_TYPE ?? 'pod';

const held = new Map();
const ws = new WebSocket(`${BASE.replace(/^http/, 'ws')}/v1/subscribe`, {
  headers: { Authorization: `Bearer ${TOKEN}` },
});

ws.on('open', () => {
  ws.send(JSON.stringify({ resourceType: TYPE })); // no list, no revision
  saveState();
});

ws.on('message', (raw) => {
  const msg = JSON.parse(raw.toString());
  if (msg.name === 'resource.create' || msg.name === 'resource.change') held.set(msg.data.id, msg.data);
  else if (msg.name === 'resource.remove') held.delete(msg.data.id);
  else return;
  saveState();
});

ws.on('error', (err) => console.error(`socket: ${err.message}`));
ws.on('close', (code) => console.log(`socket closed (${code}); giving up`)); // and the process ends

function saveState() {
  if (STATE_FILE) appendFileSync(STATE_FILE, JSON.stringify({ type: TYPE, ids: [...held.keys()].sort() }) + '\n');
}
