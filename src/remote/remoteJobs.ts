/**
 * The remote tier's CPU work, run on the store's ingest worker threads
 * (src/store/ingestPool.ts, ingestWorker.ts dispatches on `job`) so that the
 * main thread keeps downloading and uploading — or on the calling thread
 * when the compiled worker is not there (tests from the TypeScript sources):
 *
 *   - check-in (fill.ts): one downloaded range of a pack (or one loose
 *     object); each object in it is decompressed, must be exactly its size
 *     and hash (BLAKE3) to its digest, and only then is written to the store
 *     with writeBufferToStore (temp file, then link: atomic);
 *   - encode (publish.ts): the objects an install's ingest did not encode
 *     itself (src/npm/ingestTarball.ts `encode`) are read from the store,
 *     re-hashed (a damaged local object is never published) and
 *     zstd-compressed when that saves a tenth, small ones together in
 *     frames (remoteLayout.ts BlobEncoder).
 *
 * Object counters: a worker's Store notes what it creates but is never
 * flushed; the caller notes the created objects in its own Store from the
 * reply, so each new object is counted once.
 */
import { readFileSync } from 'node:fs';
import { VeloError, type VeloErrorCode } from '../errors.js';
import { hashBuffer } from '../store/hash.js';
import { ingestPool, type IngestPool, type JobRequest } from '../store/ingestPool.js';
import { writeBufferToStore } from '../store/writeBufferToStore.js';
import type { Store } from '../store/store.js';
import { defaultIngestThreads } from '../store/addFilesFromDir.js';
import { BlobEncoder, decodeFrame, decodeObject, reviveBlobs, type EncodedBlob, type ObjectEncoding } from './remoteLayout.js';

export interface CheckInItem {
  digest: string;
  size: number;
  /** the object is wanted as executable and/or not */
  execs: boolean[];
  /** where its stored bytes (its frame's, for enc 2) are in `data` */
  offset: number;
  length: number;
  enc: ObjectEncoding;
  /** enc 2: where it starts in the frame's uncompressed bytes */
  at: number;
}

export interface CheckInRequest extends JobRequest {
  job: 'remote-check-in';
  home: string;
  data: Uint8Array;
  items: CheckInItem[];
}

export interface CheckInReply {
  id: number;
  /** per item: it decoded to its size and digest, and is in the store */
  ok: boolean[];
  /** per item: how many store objects this job created for it (0–2) */
  created: number[];
  error?: { code: VeloErrorCode; message: string };
}

export interface EncodeItem {
  digest: string;
  size: number;
  path: string;
}

export interface EncodeRequest extends JobRequest {
  job: 'remote-encode';
  items: EncodeItem[];
}

export interface EncodeReply {
  id: number;
  /** the bytes to upload, each naming the items in it */
  blobs: EncodedBlob[];
  /** the items missing from the store or not matching their digest */
  bad: number[];
}

export type RemoteJobRequest = CheckInRequest | EncodeRequest;

const failure = (err: unknown): { code: VeloErrorCode; message: string } =>
  err instanceof VeloError ? { code: err.code, message: err.message } : { code: 'IO', message: err instanceof Error ? err.message : String(err) };

/** Check each object in `data` and put the good ones in the store. Stops at the first write error (the store's, not the remote's). */
export function checkInObjects(store: Store, data: Buffer, items: CheckInItem[]): Omit<CheckInReply, 'id'> {
  const ok: boolean[] = [];
  const created: number[] = [];
  // a frame holds several objects: unpacked once per download
  const frames = new Map<number, Buffer | undefined>();
  const unpack = (it: CheckInItem): Buffer | undefined => {
    const stored = data.subarray(it.offset, it.offset + it.length);
    if (it.enc !== 2) return decodeObject(stored, it.enc, it.size);
    if (!frames.has(it.offset)) frames.set(it.offset, decodeFrame(stored));
    const frame = frames.get(it.offset);
    return frame && it.at + it.size <= frame.length ? frame.subarray(it.at, it.at + it.size) : undefined;
  };
  try {
    for (const it of items) {
      const bytes = unpack(it);
      if (!bytes || bytes.length !== it.size || hashBuffer(bytes) !== it.digest) {
        ok.push(false);
        created.push(0);
        continue;
      }
      let n = 0;
      for (const exec of it.execs) if (writeBufferToStore(store, bytes, exec, it.digest).created) n++;
      ok.push(true);
      created.push(n);
    }
  } catch (err) {
    return { ok, created, error: failure(err) };
  }
  return { ok, created };
}

/** Read, re-hash and encode objects for upload. */
export function encodeObjects(items: EncodeItem[]): Omit<EncodeReply, 'id'> {
  const encoder = new BlobEncoder();
  const bad: number[] = [];
  items.forEach((it, i) => {
    let data: Buffer;
    try {
      data = readFileSync(it.path);
    } catch {
      bad.push(i);
      return;
    }
    // edited in place in the store: never published
    if (data.length !== it.size || hashBuffer(data) !== it.digest) bad.push(i);
    else encoder.add(i, data);
  });
  encoder.close();
  return { blobs: encoder.blobs, bad };
}

/** In a worker thread: run one job (ingestWorker.ts, which keeps its Stores open). */
export function runRemoteJob(req: RemoteJobRequest, storeAt: (home: string) => Store): CheckInReply | EncodeReply {
  if (req.job === 'remote-encode') return { id: req.id, ...encodeObjects(req.items) };
  const store = storeAt(req.home);
  const data = Buffer.from(req.data.buffer, req.data.byteOffset, req.data.byteLength);
  return { id: req.id, ...checkInObjects(store, data, req.items) };
}

/** The worker pool for remote jobs, or undefined: run them on this thread. */
export function remoteJobPool(): IngestPool | undefined {
  const threads = defaultIngestThreads();
  return threads > 1 ? ingestPool(threads) : undefined;
}

/**
 * The workers a publish encodes on: a pool of its own (the process keeps one
 * pool per size), so that encoding while the install still downloads never
 * takes the ingest pool's slots from the tarballs; undefined: this thread.
 */
export function publishJobPool(): IngestPool | undefined {
  const threads = defaultIngestThreads();
  return threads > 1 ? ingestPool(threads + 1) : undefined;
}

/** Check in one download, on a worker when there is a pool; created objects are counted in `store` either way. */
export async function checkIn(store: Store, pool: IngestPool | undefined, data: Buffer, items: CheckInItem[]): Promise<boolean[]> {
  if (!pool) {
    const r = checkInObjects(store, data, items); // writeBufferToStore counted them in this Store
    if (r.error) throw new VeloError(r.error.code, r.error.message);
    return r.ok;
  }
  const r = await pool.job<CheckInRequest, CheckInReply>({ job: 'remote-check-in', home: store.home, data, items });
  r.created.forEach((n, i) => {
    for (let k = 0; k < n; k++) store.noteNewObject(items[i]!.size);
  });
  if (r.error) throw new VeloError(r.error.code, r.error.message);
  return r.ok;
}

/** Encode objects for upload, on a worker when there is a pool. */
export async function encode(pool: IngestPool | undefined, items: EncodeItem[]): Promise<Omit<EncodeReply, 'id'>> {
  if (!pool) return encodeObjects(items);
  const r = await pool.job<EncodeRequest, EncodeReply>({ job: 'remote-encode', items });
  return { blobs: reviveBlobs(r.blobs), bad: r.bad };
}
