/**
 * Ingest a directory: every file becomes an object, the directory a tree.
 * Sockets, FIFOs and devices are refused by name; so are names that are not
 * valid UTF-8. Nothing outside the store is modified.
 *
 * How the work is split. This thread walks the directory (readdir with file
 * types: cheap, ~4 µs an entry) and builds the tree; the files go in batches
 * to a pool of worker threads (ingestPool.ts) that read, hash and write each
 * object with the same code as everything else (ingestFile →
 * writeBufferToStore → commitObject: temp file in tmp/, link, unlink). Small
 * trees (under INLINE_LIMIT files) are done right here: starting workers
 * costs more than it saves there.
 *
 * Why worker threads. Measured with the real CLI on the benchmark tree
 * (bench/store-bench.mjs: 49,788 files, 500 MB) into an empty store, 2
 * cores, ext4, interleaved, median of 3 (wall / CPU of all threads):
 *   - this thread only, sync fs (what ingest was):          11.2 s / 11.6 s
 *   - this thread + async fs on the libuv pool (4 threads),
 *     hashing here, 64 files in flight:                      10.1 s / 16.7 s
 *   - worker threads, sync fs in each, 2 workers:            5.4 s / 10.3 s
 *                                       4 workers:            6.2 s / 11.6 s
 * An object costs ~11 system calls (read side: open, fstat, read, close;
 * write side: lstat, create a temp file, write, futimes, close, link,
 * unlink). Async fs pays a promise and two thread hops for each, so it
 * burns ~45% more CPU to save ~10% of the time; workers run the same sync
 * calls as before, just on several cores at once, for about the same CPU.
 * They scale until the shared tmp/ directory's lock (every object's temp
 * file is created and unlinked there) and the CPU run out; more workers than
 * cores only add start-up cost and contention. So the default is
 * VELO_THREADS, else min(4, cores). See docs/BENCHMARKS.md.
 */
import { lstatSync, readdirSync, readlinkSync, type Dirent } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { threadsSetting } from '../config.js';
import { VeloError, errnoCode, fsError } from '../errors.js';
import { ingestFile } from './ingestFile.js';
import { ingestPool, type BatchReply, type IngestPool } from './ingestPool.js';
import { putTreeBuffer } from './trees.js';
import { serializeTree, type TreeEntry } from './treeFormat.js';
import type { Store } from './store.js';

export interface IngestOptions {
  /** record every entry's mtime in the tree (cargo's target/) */
  mtimes?: boolean;
  /** skip a relative path (and everything under it) when this returns true */
  exclude?: (relPath: string, dirent: Dirent) => boolean;
  /** called after each file, for progress (in completion order, not walk order) */
  onFile?: (relPath: string, size: number) => void;
  /** worker threads for file contents; default VELO_THREADS, else min(4, cores); 1 = this thread only */
  threads?: number;
}

export interface IngestResult {
  tree: string;
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
  newObjects: number;
  newBytes: number;
  /** worker threads that read and wrote the files (0: done on the calling thread) */
  threads: number;
}

/**
 * Trees with fewer files than this are ingested on the calling thread. A
 * worker costs ~60 ms of CPU to start (Node's bootstrap ~40, our modules
 * ~20); measured on 2 cores, a cold store: 1,200 files take 0.22–0.26 s
 * inline vs 0.36–0.40 s with 2 workers; at 2,400 it is about even; at 4,800
 * workers win (0.52–1.07 s vs 0.85–1.48 s).
 */
export const INLINE_LIMIT = 2048;
/** With the pool already running, only tiny trees stay inline. */
const INLINE_LIMIT_WARM = 32;
/** Files per batch sent to a worker. */
const BATCH_FILES = 128;

export function defaultIngestThreads(env: NodeJS.ProcessEnv = process.env): number {
  return threadsSetting(env.VELO_THREADS, 'VELO_THREADS');
}

function kindOf(d: Dirent): string {
  if (d.isSocket()) return 'a socket';
  if (d.isFIFO()) return 'a FIFO';
  if (d.isBlockDevice()) return 'a block device';
  if (d.isCharacterDevice()) return 'a character device';
  return 'an unsupported file type';
}

interface PendingFile {
  entry: TreeEntry;
  abs: string;
}

export async function ingestDir(store: Store, dir: string, options: IngestOptions = {}): Promise<IngestResult> {
  let rootStat;
  try {
    rootStat = lstatSync(dir, { bigint: true });
  } catch (err) {
    throw fsError(err, `cannot ingest ${dir}`);
  }
  if (!rootStat.isDirectory()) throw new VeloError('BAD_INPUT', `cannot ingest ${dir}: not a directory`);
  const withMtimes = options.mtimes === true;
  const threads = options.threads ?? defaultIngestThreads();
  if (!Number.isInteger(threads) || threads < 1) throw new VeloError('BAD_INPUT', `ingest threads must be a positive integer (got ${threads})`);
  const entries: TreeEntry[] = [];
  const result: IngestResult = { tree: '', files: 0, dirs: 0, symlinks: 0, bytes: 0, newObjects: 0, newBytes: 0, threads: 0 };

  /** `byWorker`: the object was created in a worker, whose Store's counters are never flushed; note it in ours */
  const record = (f: PendingFile, digest: string, size: number, exec: boolean, created: boolean, mtimeNs: bigint | undefined, byWorker: boolean): void => {
    f.entry.digest = digest;
    f.entry.size = size;
    f.entry.exec = exec;
    if (withMtimes) f.entry.mtimeNs = mtimeNs!;
    result.files++;
    result.bytes += size;
    if (created) {
      if (byWorker) store.noteNewObject(size);
      result.newObjects++;
      result.newBytes += size;
    }
    options.onFile?.(f.entry.path, size);
  };

  // files found by the walk and not yet handed out
  let pending: PendingFile[] = [];
  let pool: IngestPool | undefined;
  let failure: { error: unknown } | undefined;
  const inFlight = new Set<Promise<void>>();
  const fail = (error: unknown): void => {
    failure ??= { error };
  };

  const applyReply = (batch: PendingFile[], reply: BatchReply): void => {
    for (let i = 0; i < reply.digests.length; i++) {
      const flags = reply.flags[i]!;
      record(batch[i]!, reply.digests[i]!, reply.sizes[i]!, (flags & 1) !== 0, (flags & 2) !== 0, reply.mtimes?.[i], true);
    }
    if (reply.error) fail(new VeloError(reply.error.code, reply.error.message, reply.error.hint ? { hint: reply.error.hint } : undefined));
  };

  const send = (batch: PendingFile[]): void => {
    const p = pool!
      .run({ home: store.home, mtimes: withMtimes, paths: batch.map((f) => f.abs) }, () => failure !== undefined)
      .then((reply) => {
        try {
          applyReply(batch, reply);
        } catch (err) {
          fail(err); // an onFile callback threw
        }
      }, fail)
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };

  /** Hand out full batches; start the pool once the tree is big enough to be worth it. */
  const dispatch = (final: boolean): void => {
    if (!pool) {
      if (threads <= 1) return;
      const candidate = ingestPool(threads);
      if (!candidate || pending.length < (candidate.warm ? INLINE_LIMIT_WARM : INLINE_LIMIT)) return;
      pool = candidate;
      result.threads = threads;
    }
    while (pending.length >= BATCH_FILES || (final && pending.length > 0)) send(pending.splice(0, BATCH_FILES));
  };

  try {
    const stack: string[] = [''];
    let sinceYield = 0;
    while (stack.length > 0) {
      const rel = stack.pop()!;
      const abs = rel === '' ? dir : join(dir, rel);
      let dirents: Dirent[];
      try {
        dirents = readdirSync(abs, { withFileTypes: true });
      } catch (err) {
        throw fsError(err, `cannot read directory ${abs}`);
      }
      for (const d of dirents) {
        const name = d.name;
        const childRel = rel === '' ? name : `${rel}/${name}`;
        if (name.includes('\uFFFD')) {
          throw new VeloError('UNSUPPORTED_FILE', `cannot ingest ${join(dir, childRel)}: the file name is not valid UTF-8`);
        }
        if (options.exclude?.(childRel, d)) continue;
        const childAbs = join(abs, name);
        if (d.isDirectory()) {
          const entry: TreeEntry = { path: childRel, kind: 'dir' };
          if (withMtimes) entry.mtimeNs = lstatSync(childAbs, { bigint: true }).mtimeNs;
          entries.push(entry);
          result.dirs++;
          stack.push(childRel);
        } else if (d.isSymbolicLink()) {
          const entry: TreeEntry = { path: childRel, kind: 'symlink', target: readlinkSync(childAbs) };
          if (withMtimes) entry.mtimeNs = lstatSync(childAbs, { bigint: true }).mtimeNs;
          entries.push(entry);
          result.symlinks++;
        } else if (d.isFile()) {
          const entry: TreeEntry = { path: childRel, kind: 'file' };
          entries.push(entry);
          pending.push({ entry, abs: childAbs });
        } else {
          throw new VeloError('UNSUPPORTED_FILE', `cannot ingest ${childAbs}: it is ${kindOf(d)}; velo stores files, directories and symlinks only`);
        }
      }
      dispatch(false);
      if (failure) break;
      // let worker replies in (they free the next batch) every so often
      if (pool && ++sinceYield >= 32) {
        sinceYield = 0;
        await nextTurn();
      }
    }
    if (!failure) {
      dispatch(true);
      if (!pool) {
        const files = pending;
        pending = [];
        for (const f of files) {
          const r = await ingestFile(store, f.abs, withMtimes);
          record(f, r.digest, r.size, r.exec, r.created, r.mtimeNs, false);
        }
      }
    }
  } catch (err) {
    fail(err);
  } finally {
    // batches already with a worker finish (their objects are complete and
    // counted); queued ones are dropped once something failed
    while (inFlight.size > 0) await Promise.all(inFlight);
    store.flushCounters();
  }
  if (failure) throw ingestError(failure.error, dir);
  const root: TreeEntry = { path: '', kind: 'dir' };
  if (withMtimes) root.mtimeNs = rootStat.mtimeNs;
  result.tree = putTreeBuffer(store, serializeTree(entries, { mtimes: withMtimes, root })).digest;
  return result;
}

function ingestError(err: unknown, dir: string): VeloError {
  if (err instanceof VeloError) return err;
  if (errnoCode(err) === 'EACCES') return new VeloError('IO', `cannot ingest: permission denied (${(err as Error).message})`, { cause: err });
  return fsError(err, `cannot ingest ${dir}`);
}
