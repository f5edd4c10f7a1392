// A Rancher Steve subscribe client that stays right: list, then watch, and survive what Rancher does.
//
//   RANCHER_URL=https://rancher.example.com RANCHER_TOKEN_KEY=token-xxxxx:secret node client.mjs
//
// The recipe, step by step (each step is a function below):
//   1. Endpoint: wss://<rancher>/v1/subscribe (a downstream cluster: /k8s/clusters/<id>/v1/subscribe).
//      No `?sockId=`: that is the dashboard's own bookkeeping; the server ignores it.
//   2. Authentication: the API key's "Bearer Token" in an `Authorization: Bearer` header, on the REST calls and on
//      the upgrade alike; never in the URL. (A browser cannot set headers: there the R_SESS cookie that the login
//      set goes along by itself, same origin only.)
//   3. List, then watch: GET /v1/pods gives the objects and the collection's `revision`; the watch
//      {"resourceType":"pod","resourceVersion":<revision>} then sends only what changed after it.
//   4. Keep the last revision received; after a gap (a 1006 drop, a silent socket, a restart) open a new socket and
//      watch from it. Rancher does not replay what was sent while you were away.
//   5. resource.stop (watch expiry, a slow reader, RBAC change) ends one watch and keeps the socket: watch again,
//      once, from the last revision.
//   6. resource.error "too old": that revision is gone. List again and watch from the list's revision.
//   7. Liveness: Steve pings every 30 s. A socket silent for longer than the pings allow is dead: close it (and be
//      more patient with the next one: a server busy replaying what you missed is slow, not dead).
//   8. Reconnect with backoff: about 0.5 s, doubling, capped at 30 s, with jitter; never a tight loop.
//
// For `rancherlab check-client`, the ids held are written to RANCHERLAB_STATE_FILE as JSON lines
// {"type":"pod","ids":[...]} so the check can compare them with the server's truth.

import { appendFileSync } from 'node:fs';
import WebSocket from 'ws';

const BASE = (process.env.RANCHER_URL ?? '').replace(/\/+$/, ''); // https://rancher.example.com
const TOKEN = process.env.RANCHER_TOKEN_KEY ?? ''; // token-xxxxx:<secret>
const STATE_FILE = process.env.RANCHERLAB_STATE_FILE; // optional
const TYPE = process.env.RANCHER_TYPE ?? 'pod'; // a Steve schema id: pod, namespace, apps.deployment, ...

const BACKOFF_FIRST_MS = 500;
const BACKOFF_CAP_MS = 30_000;
const LIVENESS_DEFAULT_MS = 35_000; // before two pings were seen: Steve's 30 s ping + 5 s, as the dashboard waits
const LIVENESS_MIN_MS = 1_000;

if (!BASE || !TOKEN) {
  console.error('set RANCHER_URL (https://your-rancher) and RANCHER_TOKEN_KEY (an API key: token-xxxxx:secret)');
  process.exit(2);
}

const headers = { Authorization: `Bearer ${TOKEN}` }; // step 2: a header, never the URL

let held = new Map(); // id -> object: what this client believes the server holds
let revision = null; // the last revision received (from a list or an event); null: list first
let failures = 0; // consecutive failed connection attempts, for the backoff
let pingGap = null; // the longest gap seen between two pings, in ms
let patience = 1; // doubles each time a socket is closed for silence: a server replaying a backlog is busy, not dead

// --- step 3: list over REST ------------------------------------------------------------------------------
async function list() {
  const objects = new Map();
  let url = `${BASE}/v1/${TYPE}s`;
  let rev = null;
  while (url) {
    const res = await fetch(url, { headers });
    if (!res.ok) throw new Error(`GET ${new URL(url).pathname}: HTTP ${res.status}`);
    const body = await res.json();
    for (const obj of body.data ?? []) objects.set(obj.id, obj);
    rev ??= body.revision ?? null; // the first page's revision is the one to watch from
    url = body.pagination?.next ?? null; // large collections come in pages
  }
  held = objects;
  revision = rev;
  saveState();
  console.log(`listed ${held.size} ${TYPE}(s) at revision ${revision}`);
}

// --- steps 4 to 8: one socket at a time, for ever -----------------------------------------------------------
async function main() {
  for (;;) {
    try {
      if (revision === null) await list(); // nothing to resume from: list first
      await session(); // resolves when the socket ends
    } catch (err) {
      console.error(`error: ${err.message}`);
    }
    const delay = backoff(failures++);
    console.log(`reconnecting in ${(delay / 1000).toFixed(1)} s`);
    await sleep(delay);
  }
}

function backoff(n) {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_FIRST_MS * 2 ** n);
  return ceiling / 2 + (Math.random() * ceiling) / 2; // "equal jitter": between half the ceiling and all of it
}

function session() {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${BASE.replace(/^http/, 'ws')}/v1/subscribe`, { headers });
    let watching = false; // one watch per key: never start it while it is active
    let shortWatches = 0; // watches that ended right after they started (do not let a stop/start loop spin)
    let watchStarted = 0;
    let lastPing = null;
    let silence = null;

    const alive = () => {
      clearTimeout(silence);
      const fromPings = Math.max(LIVENESS_MIN_MS, 3 * (pingGap ?? LIVENESS_DEFAULT_MS)) * patience;
      const limit = Math.min(LIVENESS_DEFAULT_MS, fromPings); // never longer than the dashboard waits
      silence = setTimeout(() => {
        console.log(`no frame for ${limit} ms: the socket is dead`);
        patience *= 2;
        ws.terminate();
      }, limit);
    };

    const watch = () => {
      if (watching || ws.readyState !== WebSocket.OPEN) return;
      const msg = { resourceType: TYPE };
      if (revision !== null) msg.resourceVersion = revision; // resume where we were
      ws.send(JSON.stringify(msg));
      watching = true;
      watchStarted = Date.now();
    };

    ws.on('open', () => {
      failures = 0; // connected: the next gap starts the backoff again
      alive();
      watch();
    });

    ws.on('message', async (raw) => {
      alive();
      const msg = JSON.parse(raw.toString());
      const error = errorText(msg);
      if (error !== null) {
        console.error(`resource.error: ${error}`);
        if (/too old/i.test(error)) revision = null; // step 6: the list comes after the resource.stop
        return;
      }
      switch (msg.name) {
        case 'ping': {
          const now = Date.now();
          if (lastPing !== null) pingGap = Math.max(pingGap ?? 0, now - lastPing);
          lastPing = now;
          return;
        }
        case 'resource.create':
        case 'resource.change':
          held.set(msg.data.id, msg.data);
          break;
        case 'resource.remove':
          held.delete(msg.data.id);
          break;
        case 'resource.stop': {
          // step 5: watch again, once; after "too old", list first (step 6)
          watching = false;
          shortWatches = Date.now() - watchStarted < 1000 ? shortWatches + 1 : 0;
          if (shortWatches) await sleep(backoff(shortWatches - 1));
          try {
            if (revision === null) await list();
            watch();
          } catch (err) {
            console.error(`error: ${err.message}`);
            ws.terminate();
          }
          return;
        }
        default:
          return; // resource.start, and whatever a newer Rancher adds
      }
      if (msg.revision) revision = msg.revision;
      saveStateSoon();
    });

    ws.on('error', (err) => console.error(`socket: ${err.message}`));
    ws.on('close', (code) => {
      clearTimeout(silence);
      console.log(`socket closed (${code}${code === 1006 ? ': no close frame, routine' : ''})`);
      resolve();
    });
  });
}

// The text of an error frame, or null. Rancher's 2.7-head builds sent errors as a resource.change whose data
// holds a `message` and no `id` (rancher/rancher#40131); every release before and after sends resource.error.
function errorText(msg) {
  if (msg.name === 'resource.error') return String(msg.data?.error ?? '');
  if (msg.name === 'resource.change' && msg.data && !msg.data.id && typeof msg.data.message === 'string') {
    return msg.data.message;
  }
  return null;
}

// --- the state file, for rancherlab check-client --------------------------------------------------------
let saveTimer = null;

function saveStateSoon() {
  saveTimer ??= setTimeout(() => {
    saveTimer = null;
    saveState();
  }, 200);
}

function saveState() {
  if (!STATE_FILE) return;
  appendFileSync(STATE_FILE, JSON.stringify({ type: TYPE, ids: [...held.keys()].sort() }) + '\n');
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
main();
