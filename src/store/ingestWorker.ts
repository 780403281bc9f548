/**
 * An ingest worker thread (see ingestPool.ts): takes batches of file paths,
 * puts each file in the store with ingestFile — the same read, hash and
 * atomic temp-file-and-link write as single-threaded ingest — and posts back
 * what the tree needs. A batch stops at its first error; the files done
 * before it are still reported, so the caller counts the objects they
 * created.
 *
 * Object counters: this thread's Store notes created objects in memory but
 * is never flushed; the caller notes them in its own Store from the
 * `created` flags, so each new object is counted exactly once.
 */
import { parentPort } from 'node:worker_threads';
import { VeloError } from '../errors.js';
import { ingestFile } from './ingestFile.js';
import { Store } from './store.js';
import type { BatchRequest, BatchReply } from './ingestPool.js';
import { replyTransfer, runRemoteJob, type RemoteJobRequest } from '../remote/remoteJobs.js';

const stores = new Map<string, Store>();

function storeAt(home: string): Store {
  let store = stores.get(home);
  if (!store) {
    if (stores.size >= 16) stores.clear();
    store = Store.open(home);
    stores.set(home, store);
  }
  return store;
}

async function runBatch(req: BatchRequest): Promise<BatchReply> {
  const reply: BatchReply = { id: req.id, digests: [], sizes: [], flags: [], mtimes: req.mtimes ? [] : undefined };
  try {
    const store = storeAt(req.home);
    for (const path of req.paths) {
      const r = await ingestFile(store, path, req.mtimes);
      reply.digests.push(r.digest);
      reply.sizes.push(r.size);
      reply.flags.push((r.exec ? 1 : 0) | (r.created ? 2 : 0));
      reply.mtimes?.push(r.mtimeNs!);
    }
  } catch (err) {
    reply.error =
      err instanceof VeloError
        ? { code: err.code, message: err.message, hint: err.hint }
        : { code: 'IO', message: `ingest worker: ${err instanceof Error ? err.message : String(err)}` };
  }
  return reply;
}

const port = parentPort;
if (!port) throw new Error('ingestWorker.js runs as a worker thread');
// one batch at a time, in arrival order: memory stays at one batch
let chain: Promise<void> = Promise.resolve();
port.on('message', (req: BatchRequest | RemoteJobRequest) => {
  // the remote tier's jobs (src/remote/remoteJobs.ts) share these threads
  chain = chain.then(async () => {
    if (!('job' in req)) return port.postMessage(await runBatch(req));
    const reply = await runRemoteJob(req, storeAt);
    port.postMessage(reply, replyTransfer(reply));
  });
});
