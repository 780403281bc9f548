/**
 * Fetch a lockfile's registry tarballs straight from the lockfile: one GET
 * per distinct tarball at the URL the lockfile implies (src/fetch/
 * downloadList.ts), no packuments, spread over worker threads that
 * download and ingest at the same time (tarballWorker.ts), so every core
 * works on inflate, tar, hashing and object writes while the network
 * streams. The main thread only builds requests, writes each package's
 * tree (serialized by the worker) and records its key, after its bytes
 * were proven; the keys' index rows go in one transaction at the end.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { VeloError } from '../errors.js';
import { agentConfigOf, HttpPool } from '../fetch/httpPool.js';
import { retryPolicyOf } from '../fetch/retry.js';
import type { Download } from '../fetch/downloadList.js';
import { loadNative } from '../native.js';
import { KeyBatch } from '../store/keys.js';
import { addCounters } from '../store/counters.js';
import { putTreeBuffer } from '../store/trees.js';
import type { Store } from '../store/store.js';
import { runTarballJob, type TarballJob, type TarballJobSetup, type TarballReply } from './tarballJob.js';
import { npmLibrary, type AnyRecord, type LoadedNpmConfig } from './userNpm.js';
import type { PlannedPackage } from './plan.js';
import type { TarballIngest } from './ingestTarball.js';

export interface TarballsFetched {
  fetched: { pkg: PlannedPackage; result: TarballIngest }[];
  /** downloads whose conventional URL answered 404: their packages go through the packument */
  notFound: PlannedPackage[];
  requests: number;
}

type GetAuth = (uri: string, opts: AnyRecord) => { token?: string | null; auth?: string | null; cert?: string | null; key?: string | null };

function workerScript(): URL | undefined {
  const here = fileURLToPath(import.meta.url);
  const beside = join(dirname(here), 'tarballWorker.js');
  if (here.endsWith('.js')) return existsSync(beside) ? pathToFileURL(beside) : undefined;
  const compiled = join(dirname(here), '..', '..', 'dist', 'src', 'npm', 'tarballWorker.js');
  return existsSync(compiled) ? pathToFileURL(compiled) : undefined;
}

/** Request headers as npm-registry-fetch sends them for a tarball: user agent, command, and the registry's auth. */
function requestFor(loaded: LoadedNpmConfig, getAuth: GetAuth | undefined, d: Download<PlannedPackage>, id: number): TarballJob {
  const flat = loaded.flat;
  const first = d.packages[0]!;
  const headers: Record<string, string> = { accept: '*/*' };
  if (typeof flat.userAgent === 'string') headers['user-agent'] = flat.userAgent;
  if (typeof flat.npmCommand === 'string') headers['npm-command'] = flat.npmCommand;
  const job: TarballJob = { id, url: d.url, headers, integrity: d.integrity, pkgid: `${first.name}@${first.version}`, bins: [] };
  if (getAuth) {
    const opts = Object.create(flat) as AnyRecord;
    opts.spec = first.name;
    const auth = getAuth(d.url, opts);
    if (auth.token) headers.authorization = `Bearer ${auth.token}`;
    else if (auth.auth) headers.authorization = `Basic ${auth.auth}`;
    if (auth.cert || auth.key) job.tls = { cert: auth.cert ?? undefined, key: auth.key ?? undefined };
  }
  const bins = new Set<string>();
  for (const p of d.packages) for (const b of p.bins.values()) bins.add(b);
  job.bins = [...bins];
  return job;
}

interface Runner {
  run(job: TarballJob): Promise<TarballReply>;
  stop(): void;
}

function workerRunner(script: URL, threads: number, setup: TarballJobSetup): Runner {
  const pending = new Map<number, (r: TarballReply) => void>();
  let broken: string | undefined;
  const workers = Array.from({ length: threads }, () => {
    // a small young generation: tarball chunks die young, and each worker's heap otherwise grows its
    // semi-spaces to V8's default (~30 MB more peak RSS per worker on the 1207-package lockfile, same CPU)
    const w = new Worker(script, { name: 'velo-tarball', workerData: setup, resourceLimits: { maxYoungGenerationSizeMb: 4 } });
    const slot = { worker: w, inFlight: 0 };
    w.on('message', (r: TarballReply) => {
      slot.inFlight--;
      const done = pending.get(r.id);
      pending.delete(r.id);
      done?.(r);
    });
    const fail = (why: string): void => {
      broken ??= why;
      for (const [id, done] of pending) done({ id, ok: false, error: { code: 'IO', message: `a tarball worker thread failed: ${why}` } });
      pending.clear();
    };
    w.on('error', (err) => fail(err.message));
    w.on('exit', (code) => {
      if (pending.size > 0) fail(`it exited with code ${code}`);
    });
    return slot;
  });
  return {
    run: (job) =>
      new Promise((resolve) => {
        if (broken) return resolve({ id: job.id, ok: false, error: { code: 'IO', message: `a tarball worker thread failed: ${broken}` } });
        pending.set(job.id, resolve);
        // the least busy worker: one that drew a large tarball gets no more until it catches up
        const slot = workers.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
        slot.inFlight++;
        slot.worker.postMessage(job);
      }),
    stop: () => {
      for (const s of workers) void s.worker.terminate();
    },
  };
}

function inProcessRunner(store: Store, setup: TarballJobSetup): Runner {
  const http = new HttpPool(setup.agent);
  return { run: (job) => runTarballJob(store, http, setup.retry, job), stop: () => undefined };
}

export async function fetchTarballs(
  store: Store,
  loaded: LoadedNpmConfig,
  downloads: Download<PlannedPackage>[],
  onFetched: (pkg: PlannedPackage, result: TarballIngest) => void,
  encodeFor?: (pkg: PlannedPackage) => boolean,
): Promise<TarballsFetched> {
  const out: TarballsFetched = { fetched: [], notFound: [], requests: 0 };
  if (downloads.length === 0) return out;
  const flat = loaded.flat;
  const concurrency = Math.max(1, Number(process.env.VELO_FETCH_CONCURRENCY ?? Math.max(16, Number(flat.maxSockets) || 0)));
  const wanted = Number(process.env.VELO_FETCH_THREADS ?? Math.min(4, availableParallelism()));
  const script = wanted > 0 ? workerScript() : undefined;
  const threads = script ? Math.min(wanted, downloads.length) : 0;
  const setup: TarballJobSetup = {
    home: store.home,
    agent: agentConfigOf(flat, loaded.npm.root, Math.ceil(concurrency / Math.max(1, threads))),
    retry: retryPolicyOf(flat),
  };
  let getAuth: GetAuth | undefined;
  try {
    getAuth = npmLibrary<GetAuth>(loaded.npm, 'npm-registry-fetch/lib/auth.js');
  } catch {
    getAuth = undefined; // an npm without it: no credentials are sent
  }
  // the worker threads share one malloc arena instead of one each, where each would keep what its thread
  // freed (glibc; the process's own arena is the other): ~20 MB less peak RSS on the 1207-package lockfile
  if (script) loadNative()?.limitMallocArenas?.(2);
  const runner = script ? workerRunner(script, threads, setup) : inProcessRunner(store, setup);
  let failed: VeloError | undefined;
  let nextIndex = 0;
  const keys = new KeyBatch(store);
  let newObjects = 0;
  let newBytes = 0;
  const lane = async (): Promise<void> => {
    while (!failed && nextIndex < downloads.length) {
      const i = nextIndex++;
      const d = downloads[i]!;
      const job = requestFor(loaded, getAuth, d, i);
      if (encodeFor && d.packages.some(encodeFor)) job.encode = true;
      const reply = await runner.run(job);
      if (!reply.ok) {
        failed ??= new VeloError(reply.error.code, reply.error.message, { hint: reply.error.hint });
        return;
      }
      out.requests += reply.attempts;
      if (reply.notFound) {
        if (!d.conventional) {
          failed ??= new VeloError('NOT_FOUND', `${d.packages[0]!.name}@${d.packages[0]!.version}: not found in the registry (404) at ${d.url}`);
          return;
        }
        out.notFound.push(...d.packages);
        continue;
      }
      try {
        const tree = putTreeBuffer(store, Buffer.from(reply.tree.buffer, reply.tree.byteOffset, reply.tree.byteLength)).digest;
        newObjects += reply.ingest.newObjects;
        newBytes += reply.ingest.newBytes;
        const result: TarballIngest = { ...reply.ingest, tree };
        for (const pkg of d.packages) {
          if (pkg.key) keys.add(pkg.key, tree, { kind: 'npm', logicalBytes: result.bytes, files: result.files });
          out.fetched.push({ pkg, result });
          onFetched(pkg, result);
        }
      } catch (err) {
        failed ??= err instanceof VeloError ? err : new VeloError('IO', (err as Error).message, { cause: err });
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, downloads.length) }, lane));
  } finally {
    runner.stop();
    // the keys' index rows in one transaction (their refs are written already)
    keys.flush();
    if (script) addCounters(store, { objects: newObjects, object_bytes: newBytes });
  }
  if (failed) throw failed;
  return out;
}
