/**
 * The object fetcher of a lazy mount: velo-mountd starts it with the mount
 * (native/src/mountd.c, --fetch-node/--fetch-script) and asks it, over the
 * socket on fd 3, for each object a reader opens that is not in the store
 * yet (native/src/fuse_fetch.h has the wire format). It reads the tree's
 * lazy record (lazyRecord.ts) for where each object lives, downloads it
 * (one ranged GET of its pack, or the lone object), checks its size and
 * BLAKE3 digest and writes it into the store atomically — only then does
 * it answer "ok", and the mount opens the object. Anything else (the remote
 * unreachable, refused, a digest that does not match) is one line in the
 * mount's log and an error answer: that open fails with EIO, and no wrong
 * byte is ever stored or served. Requests for one object while it is being
 * fetched share its download.
 *
 *   node lazyFetcher.js --dir <mount dir> --objects <store>/objects --tree <tree digest>
 *
 * The remote's endpoint and credentials come from the environment the
 * mount was started in (inherited through velo-mountd); its URL from the
 * record. What it fetched is kept in <mount dir>/fetch-stats.json. It exits
 * when the socket closes: when velo-mountd exits, however it exits.
 */
import { createInterface } from 'node:readline';
import { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { objectLooksIntact } from '../store/commitObject.js';
import { objectRelPath } from '../store/layout.js';
import { writeFileAtomic } from '../store/atomicWrite.js';
import { Store } from '../store/store.js';
import { remoteSettings } from './remoteConfig.js';
import { S3Client } from './s3Client.js';
import { looseObjectName, packObjectName } from './remoteLayout.js';
import { checkInObjects } from './remoteJobs.js';
import { readLazyRecord, type LazyObject } from './lazyRecord.js';

/** What the fetcher did, in <mount dir>/fetch-stats.json (for `velo mount status`, tests and benches). */
export interface FetchStats {
  /** objects fetched, checked and written into the store */
  objects: number;
  /** their size */
  bytes: number;
  /** requests to the remote and the bytes they brought (compressed as stored there) */
  requests: number;
  bytesIn: number;
  /** objects that could not be fetched (the open failed with EIO) */
  failed: number;
}

const { values } = parseArgs({ options: { dir: { type: 'string' }, objects: { type: 'string' }, tree: { type: 'string' } } });
if (!values.dir || !values.objects || !values.tree) {
  process.stderr.write('usage: lazyFetcher.js --dir <mount dir> --objects <objects dir> --tree <tree>\n');
  process.exit(2);
}
const mountDir = values.dir;
const home = dirname(values.objects);
const tree = values.tree;
const stats: FetchStats = { objects: 0, bytes: 0, requests: 0, bytesIn: 0, failed: 0 };

function log(message: string): void {
  process.stderr.write(`${new Date().toISOString()} [${process.pid}] fetcher: ${message}\n`);
}

const record = readLazyRecord(home, tree);
const byName = new Map<string, LazyObject>();
// named as the mount asks: the path under objects/
for (const o of record?.objects ?? []) byName.set(objectRelPath(o.digest, o.exec).slice('objects/'.length), o);
const settings = record ? remoteSettings({ env: process.env, flag: record.remote }) : undefined;
const client = settings ? new S3Client(settings.location) : undefined;
const store = Store.open(home);
if (!record) log(`no lazy record for tree ${tree}: objects not in the store cannot be fetched`);
else log(`${byName.size} objects of tree ${tree} fetched on first open from ${record.remote}`);

let statsTimer: NodeJS.Timeout | undefined;
function saveStats(): void {
  statsTimer = undefined;
  stats.requests = client?.stats.requests ?? 0;
  stats.bytesIn = client?.stats.bytesIn ?? 0;
  try {
    writeFileAtomic(join(mountDir, 'fetch-stats.json'), JSON.stringify(stats) + '\n', join(mountDir, `.fetch-stats.${process.pid}.tmp`));
    store.flushCounters();
  } catch (err) {
    log(`cannot record what was fetched: ${(err as Error).message}`);
  }
}
function statsChanged(): void {
  statsTimer ??= setTimeout(saveStats, 200);
}

/** Fetch one object into the store; undefined when it is there, else why not. */
async function fetchObject(name: string): Promise<string | undefined> {
  const o = byName.get(name);
  if (!o || !client || !settings) return `${name} is not an object of tree ${tree} left in the remote`;
  const path = store.objectPath(o.digest, o.exec);
  if (objectLooksIntact(path, o.size)) return undefined;
  const key = o.loc.pack === '' ? looseObjectName(settings.prefix, o.digest) : packObjectName(settings.prefix, o.loc.pack);
  let data: Buffer | undefined;
  try {
    data = o.loc.pack === '' ? await client.get(key, undefined, o.loc.length) : await client.get(key, { start: o.loc.offset, end: o.loc.offset + o.loc.length - 1 });
  } catch (err) {
    return `${key}: ${(err as Error).message}`;
  }
  if (data === undefined) return `${key} is missing from ${settings.url}`;
  if (data.length !== o.loc.length) return `${key}: got ${data.length} bytes for an object stored in ${o.loc.length}`;
  const r = checkInObjects(store, data, [{ digest: o.digest, size: o.size, execs: [o.exec], offset: 0, length: data.length, enc: o.loc.enc }]);
  if (r.error) return `cannot write ${o.digest} into the store: ${r.error.message}`;
  if (!r.ok[0]) return `object ${o.digest} in ${key} does not match its digest: not used`;
  stats.objects++;
  stats.bytes += o.size;
  return undefined;
}

const inFlight = new Map<string, Promise<string | undefined>>();
function fetchOnce(name: string): Promise<string | undefined> {
  let p = inFlight.get(name);
  if (!p) {
    p = fetchObject(name)
      .catch((err: unknown) => `unexpected error: ${(err as Error).message}`)
      .then((why) => {
        if (why !== undefined) {
          stats.failed++;
          log(`cannot fetch ${name}: ${why}`);
        }
        statsChanged();
        return why;
      })
      .finally(() => inFlight.delete(name));
    inFlight.set(name, p);
  }
  return p;
}

const socket = new Socket({ fd: 3, readable: true, writable: true });
const finish = (): void => {
  if (statsTimer) clearTimeout(statsTimer);
  saveStats();
  store.close();
  process.exit(0);
};
socket.on('error', (err) => log(`socket: ${err.message}`));
socket.on('close', finish);
process.on('SIGTERM', finish);
createInterface({ input: socket, crlfDelay: Infinity }).on('line', (line) => {
  const sp = line.indexOf(' ');
  const id = line.slice(0, sp);
  if (sp <= 0 || !/^\d+$/.test(id)) return;
  void fetchOnce(line.slice(sp + 1)).then((why) => {
    if (!socket.destroyed) socket.write(why === undefined ? `${id} ok\n` : `${id} error ${why.replace(/\n/g, ' ')}\n`);
  });
});
