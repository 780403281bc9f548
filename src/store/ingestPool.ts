/**
 * A small pool of worker threads that put files in the store
 * (ingestWorker.ts). One pool per thread count per process, started on
 * first use and reused by every later ingest; idle workers do not keep the
 * process alive and are stopped after a while.
 *
 * Batches are pulled, not pushed: each worker has at most two batches in
 * flight, and the next batch goes to whichever worker finishes first, so a
 * worker that drew a few multi-MB files does not hold the ingest up.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { VeloError, type VeloErrorCode } from '../errors.js';

export interface BatchRequest {
  id: number;
  /** the store's home directory */
  home: string;
  mtimes: boolean;
  /** absolute paths of regular files */
  paths: string[];
}

export interface BatchReply {
  id: number;
  /** one per file done, in order; fewer than paths when `error` is set */
  digests: string[];
  sizes: number[];
  /** bit 0: executable, bit 1: this worker created the object */
  flags: number[];
  mtimes: bigint[] | undefined;
  /** the first failure; the files after it were not looked at */
  error?: { code: VeloErrorCode; message: string; hint?: string | undefined };
}

/**
 * Any other job the worker runs (ingestWorker.ts dispatches on `job`): the
 * remote tier's checked writes and publish reads (src/remote/remoteJobs.ts).
 */
export interface JobRequest {
  id: number;
  job: string;
}

interface Task {
  req: BatchRequest | JobRequest;
  /** checked just before the batch is sent: true drops it (resolved with nothing done) */
  skip: (() => boolean) | undefined;
  /** moved to the worker with the request instead of copied (the sender must not use them after) */
  transfer?: ArrayBuffer[];
  /** with the worker's reply: a BatchReply for a BatchRequest, the job's reply for a JobRequest */
  resolve: (reply: never) => void;
  reject: (err: unknown) => void;
}

interface Slot {
  worker: Worker;
  inFlight: Map<number, Task>;
}

const MAX_IN_FLIGHT = 2;
const IDLE_STOP_MS = 10_000;

/** The compiled worker beside this module, or under dist/ when running from the TypeScript sources (tests). */
function workerScript(): URL | undefined {
  const here = fileURLToPath(import.meta.url);
  const beside = join(dirname(here), 'ingestWorker.js');
  if (here.endsWith('.js')) return existsSync(beside) ? pathToFileURL(beside) : undefined;
  const compiled = join(dirname(here), '..', '..', 'dist', 'src', 'store', 'ingestWorker.js');
  return existsSync(compiled) ? pathToFileURL(compiled) : undefined;
}

export class IngestPool {
  readonly size: number;
  readonly #script: URL;
  #slots: Slot[] = [];
  #queue: Task[] = [];
  #nextId = 1;
  #idleTimer: NodeJS.Timeout | undefined;

  constructor(size: number, script: URL) {
    this.size = size;
    this.#script = script;
  }

  /**
   * Start `count` workers now (default: all; they load while the caller does other work; they stop
   * after being idle as usual). Only for work that is sure to come: a worker that gets no job cost
   * its start for nothing.
   */
  start(count = this.size): void {
    while (this.#slots.length < Math.min(count, this.size)) this.#spawn();
    this.#pump();
  }

  /** true while workers are running (started by an earlier ingest) */
  get warm(): boolean {
    return this.#slots.length > 0;
  }

  /** how many workers are running */
  get workers(): number {
    return this.#slots.length;
  }

  run(req: Omit<BatchRequest, 'id'>, skip?: () => boolean): Promise<BatchReply> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ req: { ...req, id: this.#nextId++ }, skip, resolve: resolve as (reply: never) => void, reject });
      this.#pump();
    });
  }

  /**
   * Run one job of another kind (see JobRequest) on the next free worker; resolves with the worker's reply.
   * `transfer`: buffers moved to the worker rather than copied (they are detached here once it is sent).
   */
  job<Req extends JobRequest, Reply>(req: Omit<Req, 'id'>, transfer?: ArrayBuffer[]): Promise<Reply> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ req: { ...req, id: this.#nextId++ } as Req, skip: undefined, ...(transfer ? { transfer } : {}), resolve: resolve as (reply: never) => void, reject });
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#idleTimer) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = undefined;
    }
    // a worker more only while every running one is busy and work waits: one queued job starts one
    // worker, not the pool's size (a worker's start costs ~250 ms of CPU; a publish that encodes a
    // few large files, or a check-in pool on an empty remote, spent that on workers that never got a job)
    let idle = this.#slots.filter((s) => s.inFlight.size === 0).length;
    while (this.#slots.length < this.size && this.#queue.length > idle) {
      this.#spawn();
      idle++;
    }
    for (;;) {
      const task = this.#queue[0];
      if (!task) break;
      if (task.skip?.()) {
        this.#queue.shift();
        task.resolve({ id: task.req.id, digests: [], sizes: [], flags: [], mtimes: undefined } satisfies BatchReply as never);
        continue;
      }
      let best: Slot | undefined;
      for (const s of this.#slots) if (s.inFlight.size < MAX_IN_FLIGHT && (!best || s.inFlight.size < best.inFlight.size)) best = s;
      if (!best) break;
      this.#queue.shift();
      if (best.inFlight.size === 0) best.worker.ref();
      best.inFlight.set(task.req.id, task);
      best.worker.postMessage(task.req, task.transfer);
    }
    if (this.#queue.length === 0 && this.#slots.every((s) => s.inFlight.size === 0) && this.#slots.length > 0) {
      this.#idleTimer = setTimeout(() => this.stop(), IDLE_STOP_MS);
      this.#idleTimer.unref();
    }
  }

  #spawn(): void {
    // the process's Node flags, less --input-type (set when velo runs from `node --input-type=module -e`, as the
    // cargo test harness does), which a worker with a script file refuses
    const execArgv = process.execArgv.filter((a) => !a.startsWith('--input-type'));
    const worker = new Worker(this.#script, { name: 'velo-ingest', execArgv });
    const slot: Slot = { worker, inFlight: new Map() };
    worker.on('message', (reply: { id: number }) => {
      const task = slot.inFlight.get(reply.id);
      if (!task) return;
      slot.inFlight.delete(reply.id);
      if (slot.inFlight.size === 0) worker.unref();
      task.resolve(reply as never);
      this.#pump();
    });
    const fail = (why: string): void => {
      this.#slots = this.#slots.filter((s) => s !== slot);
      const tasks = [...slot.inFlight.values()];
      slot.inFlight.clear();
      for (const t of tasks) t.reject(new VeloError('IO', `an ingest worker thread failed: ${why}`));
      if (this.#queue.length > 0) this.#pump();
    };
    worker.on('error', (err) => fail(err.message));
    worker.on('exit', (code) => {
      if (this.#slots.includes(slot)) fail(`it exited with code ${code}`);
    });
    // after the listeners: adding a 'message' listener refs the worker's port again, and an idle worker
    // that never got a job then kept the process alive until the idle stop
    worker.unref();
    this.#slots.push(slot);
  }

  /**
   * Stop the workers now if none has work (a user that knows it is done: the
   * workers would otherwise outlive the command by the idle delay, keeping
   * the process alive). A later job starts them again.
   */
  stopIfIdle(): void {
    if (this.#queue.length > 0 || this.#slots.some((s) => s.inFlight.size > 0)) return;
    if (this.#idleTimer) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = undefined;
    }
    this.stop();
  }

  /** Stop the workers (only ever called when none has work). */
  stop(): void {
    const slots = this.#slots;
    this.#slots = [];
    for (const s of slots) void s.worker.terminate();
  }
}

const pools = new Map<number, IngestPool>();

/** The process's pool of `threads` workers; undefined when the compiled worker is not there. */
export function ingestPool(threads: number): IngestPool | undefined {
  let pool = pools.get(threads);
  if (!pool) {
    const script = workerScript();
    if (!script) return undefined;
    pool = new IngestPool(threads, script);
    pools.set(threads, pool);
  }
  return pool;
}
