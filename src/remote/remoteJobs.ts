/**
 * The remote tier's CPU work, run on the store's ingest worker threads
 * (src/store/ingestPool.ts, ingestWorker.ts dispatches on `job`) so that the
 * main thread keeps downloading and uploading — or on the calling thread
 * when the compiled worker is not there (tests from the TypeScript sources):
 *
 *   - check-in (fill.ts): one downloaded range of a pack (or one loose
 *     object); each object in it is decompressed, must be exactly its size
 *     and hash (BLAKE3) to its digest, and only then is written to the store,
 *     the download's objects in one batch (writeObjectBatch: O_TMPFILE +
 *     linkat, no temporary names; atomic either way);
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
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { once } from 'node:events';
import { constants as zlibConstants, createZstdCompress } from 'node:zlib';
import { VeloError, type VeloErrorCode } from '../errors.js';
import { createHash, hashBuffer } from '../store/hash.js';
import { ingestPool, type IngestPool, type JobRequest } from '../store/ingestPool.js';
import { writeObjectBatch, type HeldObject } from '../store/writeObjectBatch.js';
import type { Store } from '../store/store.js';
import { defaultIngestThreads } from '../store/addFilesFromDir.js';
import { BlobEncoder, DEFAULT_ENCODE_POLICY, blobsBuffer, decodeFrame, decodeObject, movableBlobs, reviveBlobs, type EncodedBlob, type ObjectEncoding } from './remoteLayout.js';

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

/**
 * Check each object in `data` and put the good ones in the store, all in one
 * batch (writeObjectBatch: the native O_TMPFILE + linkat writer, else one by
 * one from JavaScript). On a write error (the store's, not the remote's) the
 * reply carries it and no `ok` entries: which objects of the batch landed is
 * not known, and each that did is complete under its name.
 */
export function checkInObjects(store: Store, data: Buffer, items: CheckInItem[]): Omit<CheckInReply, 'id'> {
  const ok: boolean[] = [];
  const held: HeldObject[] = [];
  /** per held object: the item it belongs to */
  const owner: number[] = [];
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
    items.forEach((it, i) => {
      const bytes = unpack(it);
      const good = bytes !== undefined && bytes.length === it.size && hashBuffer(bytes) === it.digest;
      ok.push(good);
      if (!good) return;
      for (const exec of it.execs) {
        held.push({ digest: it.digest, exec, data: bytes });
        owner.push(i);
      }
    });
    const created = items.map(() => 0);
    writeObjectBatch(store, held).forEach((r, k) => {
      if (r.created) created[owner[k]!]!++;
    });
    return { ok, created };
  } catch (err) {
    return { ok: [], created: [], error: failure(err) };
  }
}

/**
 * Objects at least this large are read, hashed and compressed a chunk at a
 * time, never whole in memory (the 1207-package lockfile has a 143 MB
 * native binary: it took 143 MB read plus its compressed copy, twice).
 */
const STREAM_ENCODE_FROM = 16 << 20;
const STREAM_CHUNK = 1 << 20;

/** A large object's bytes to store (encodeObject's rule, zstd when that saves a tenth), read and hashed as they are compressed; undefined: missing, or not its digest. */
async function encodeLarge(it: EncodeItem): Promise<{ bytes: Buffer; enc: 0 | 1 } | undefined> {
  let fd: number;
  try {
    fd = openSync(it.path, 'r');
  } catch {
    return undefined;
  }
  const hash = createHash();
  const z = createZstdCompress({ params: { [zlibConstants.ZSTD_c_compressionLevel]: DEFAULT_ENCODE_POLICY.level }, chunkSize: STREAM_CHUNK });
  const out: Buffer[] = [];
  let outSize = 0;
  z.on('data', (c: Buffer) => {
    out.push(c);
    outSize += c.length;
  });
  const ended = once(z, 'end');
  ended.catch(() => undefined); // a compressor error is seen where it is awaited, never as an unhandled rejection
  let size = 0;
  try {
    for (;;) {
      // a fresh buffer each time: the compressor may still hold the last one
      const buf = Buffer.allocUnsafeSlow(STREAM_CHUNK);
      const n = readSync(fd, buf, 0, STREAM_CHUNK, null);
      if (n === 0) break;
      size += n;
      if (size > it.size) break; // grown since: not the object
      const chunk = buf.subarray(0, n);
      hash.update(chunk);
      if (!z.write(chunk)) await once(z, 'drain');
    }
    z.end();
    await ended;
  } catch {
    z.destroy();
    return undefined;
  } finally {
    closeSync(fd);
  }
  // edited in place in the store: never published
  if (size !== it.size || hash.digestHex() !== it.digest) return undefined;
  if (outSize <= it.size * 0.9) return { bytes: Buffer.concat(out, outSize), enc: 1 };
  // does not compress: stored as it is, read (and checked) again
  out.length = 0;
  try {
    const data = readFileSync(it.path);
    return data.length === it.size && hashBuffer(data) === it.digest ? { bytes: data, enc: 0 } : undefined;
  } catch {
    return undefined;
  }
}

/** Read, re-hash and encode objects for upload. */
export async function encodeObjects(items: EncodeItem[]): Promise<Omit<EncodeReply, 'id'>> {
  const encoder = new BlobEncoder();
  const bad: number[] = [];
  for (const [i, it] of items.entries()) {
    if (it.size >= STREAM_ENCODE_FROM) {
      const large = await encodeLarge(it);
      if (large) encoder.blobs.push({ ...large, members: [[i, 0]] });
      else bad.push(i);
      continue;
    }
    let data: Buffer;
    try {
      data = readFileSync(it.path);
    } catch {
      bad.push(i);
      continue;
    }
    // edited in place in the store: never published
    if (data.length !== it.size || hashBuffer(data) !== it.digest) bad.push(i);
    else encoder.add(i, data);
  }
  encoder.close();
  // one buffer, moved to the caller's thread rather than copied (movableBlobs)
  movableBlobs(encoder.blobs);
  return { blobs: encoder.blobs, bad };
}

/** What a job's reply can move rather than copy back (postMessage's transfer list). */
export function replyTransfer(reply: CheckInReply | EncodeReply): ArrayBuffer[] | undefined {
  const buffer = 'blobs' in reply ? blobsBuffer(reply.blobs) : undefined;
  return buffer ? [buffer] : undefined;
}

/** In a worker thread: run one job (ingestWorker.ts, which keeps its Stores open). */
export async function runRemoteJob(req: RemoteJobRequest, storeAt: (home: string) => Store): Promise<CheckInReply | EncodeReply> {
  if (req.job === 'remote-encode') return { id: req.id, ...(await encodeObjects(req.items)) };
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

/** Check in one download, on a worker when there is a pool (`data` may be detached after); created objects are counted in `store` either way. */
export async function checkIn(store: Store, pool: IngestPool | undefined, data: Buffer, items: CheckInItem[]): Promise<boolean[]> {
  if (!pool) {
    const r = checkInObjects(store, data, items); // writeObjectBatch counted them in this Store
    if (r.error) throw new VeloError(r.error.code, r.error.message);
    return r.ok;
  }
  // a download that owns its memory is moved to the worker, not copied (the caller is done with it)
  const owned = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer;
  const r = await pool.job<CheckInRequest, CheckInReply>({ job: 'remote-check-in', home: store.home, data, items }, owned ? [data.buffer] : undefined);
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
