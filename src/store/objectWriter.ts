/**
 * Write one object from chunks that arrive synchronously (a tar entry's
 * data events): small contents are gathered and written in one go, large
 * ones go straight to a temporary file in the store while being hashed, so
 * memory stays bounded whatever the size.
 */
import { closeSync, futimesSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { fsError } from '../errors.js';
import { createHash, type IncrementalHash } from './hash.js';
import { commitObject, objectLooksIntact, type AddResult } from './commitObject.js';
import { OBJECT_EXEC_MODE, OBJECT_MODE, OBJECT_MTIME_S } from './layout.js';
import { SMALL_FILE_LIMIT } from './addFile.js';
import { writeTempObject } from './writeBufferToStore.js';
import { hashBuffer } from './hash.js';
import type { Store } from './store.js';
import { writeObjectBatch } from './writeObjectBatch.js';

/** Told the digest and the very bytes it was computed from (a publish encodes them there and then). */
export type OnHashed = (digest: string, data: Buffer) => void;

/** a streamed object up to this size is also kept in memory while it streams, when someone wants its bytes (OnHashed) */
const KEEP_STREAMED_MAX = 64 * 1024 * 1024;

export class ObjectWriter {
  readonly #store: Store;
  readonly #exec: boolean;
  readonly #onHashed: OnHashed | undefined;
  #chunks: Buffer[] = [];
  /** a streamed object's chunks, kept for #onHashed */
  #kept: Buffer[] | undefined;
  #size = 0;
  #fd = -1;
  #tmp = '';
  #hash: IncrementalHash | undefined;
  readonly #memoryLimit: number;

  /** `memoryLimit`: contents larger than this stream to a temporary file instead of being gathered in memory */
  constructor(store: Store, exec: boolean, expectedSize: number, onHashed?: OnHashed, memoryLimit = SMALL_FILE_LIMIT) {
    this.#store = store;
    this.#exec = exec;
    this.#onHashed = onHashed;
    this.#memoryLimit = memoryLimit;
    if (onHashed && expectedSize <= KEEP_STREAMED_MAX) this.#kept = [];
    if (expectedSize > memoryLimit) this.#toFile();
  }

  #toFile(): void {
    this.#tmp = this.#store.tmpPath('obj');
    try {
      this.#fd = openSync(this.#tmp, 'wx', this.#exec ? OBJECT_EXEC_MODE : OBJECT_MODE);
    } catch (err) {
      throw fsError(err, `cannot write to the store's tmp/`);
    }
    this.#hash = createHash();
    for (const c of this.#chunks) this.#write(c);
    this.#chunks = [];
  }

  #write(chunk: Buffer): void {
    this.#hash!.update(chunk);
    if (this.#kept) {
      if (this.#size <= KEEP_STREAMED_MAX) this.#kept.push(chunk);
      else this.#kept = undefined;
    }
    let off = 0;
    try {
      while (off < chunk.length) off += writeSync(this.#fd, chunk, off, chunk.length - off);
    } catch (err) {
      this.abort();
      throw fsError(err, 'cannot write to the store');
    }
  }

  update(chunk: Buffer): void {
    this.#size += chunk.length;
    if (this.#fd >= 0) this.#write(chunk);
    else {
      this.#chunks.push(chunk);
      if (this.#size > this.#memoryLimit) this.#toFile();
    }
  }

  /**
   * Finish writing but do not commit: the contents stay in a temporary file
   * (or nowhere, when the store already holds the object) until
   * commitStaged(), or go with discardStaged(). An ingest that can still be
   * refused (a tarball whose integrity is checked at its end) stages every
   * object, so a refusal leaves no object behind.
   */
  stage(transform?: (data: Buffer) => Buffer): StagedObject {
    if (this.#fd < 0) {
      const raw = Buffer.concat(this.#chunks, this.#size);
      this.#chunks = [];
      const data = transform ? transform(raw) : raw;
      const digest = hashBuffer(data);
      this.#onHashed?.(digest, data);
      if (objectLooksIntact(this.#store.objectPath(digest, this.#exec), data.length)) return { digest, size: data.length, exec: this.#exec, tmp: undefined };
      const tmp = writeTempObject(this.#store, data, this.#exec);
      return { digest, size: data.length, exec: this.#exec, tmp };
    }
    try {
      futimesSync(this.#fd, OBJECT_MTIME_S, OBJECT_MTIME_S);
      closeSync(this.#fd);
    } catch (err) {
      this.abort();
      throw fsError(err, 'cannot write to the store');
    }
    this.#fd = -1;
    const digest = this.#hash!.digestHex();
    if (this.#kept) this.#onHashed?.(digest, Buffer.concat(this.#kept, this.#size));
    this.#kept = undefined;
    return { digest, size: this.#size, exec: this.#exec, tmp: this.#tmp };
  }

  /**
   * Finish without writing anything yet, when the contents are small enough
   * to be in memory: the object is written by commitStagedAll() with the
   * rest of its package (one native call for all of them), or dropped.
   * A writer already streaming to a temporary file stages as stage() does.
   */
  hold(transform?: (data: Buffer) => Buffer): StagedObject {
    if (this.#fd >= 0) return this.stage(transform);
    const raw = Buffer.concat(this.#chunks, this.#size);
    this.#chunks = [];
    const data = transform ? transform(raw) : raw;
    const digest = hashBuffer(data);
    this.#onHashed?.(digest, data);
    return { digest, size: data.length, exec: this.#exec, tmp: undefined, data };
  }

  /** Commit; `transform` may rewrite small contents first (e.g. a bin's CRLF shebang). */
  finish(transform?: (data: Buffer) => Buffer): AddResult {
    return commitStaged(this.#store, this.stage(transform));
  }

  abort(): void {
    if (this.#fd >= 0) {
      try {
        closeSync(this.#fd);
      } catch {
        /* closed */
      }
      this.#fd = -1;
    }
    if (this.#tmp) {
      try {
        unlinkSync(this.#tmp);
      } catch {
        /* gone */
      }
    }
    this.#chunks = [];
    this.#kept = undefined;
  }
}

/**
 * A finished object not yet in the store: `tmp` is its temporary file, or
 * `data` its contents in memory (hold()); neither when the store already had it.
 */
export interface StagedObject {
  digest: string;
  size: number;
  exec: boolean;
  tmp: string | undefined;
  data?: Buffer | undefined;
}

export function commitStaged(store: Store, staged: StagedObject): AddResult {
  if (staged.data) return writeObjectBatch(store, [{ digest: staged.digest, exec: staged.exec, data: staged.data }])[0]!;
  if (staged.tmp === undefined) return { digest: staged.digest, size: staged.size, exec: staged.exec, created: false };
  return commitObject(store, staged.tmp, staged.digest, staged.exec, staged.size, true);
}

/** Commit every staged object, the ones held in memory in one batch; results in the same order. */
export function commitStagedAll(store: Store, staged: StagedObject[]): AddResult[] {
  const held = staged.filter((s) => s.data !== undefined);
  const written = writeObjectBatch(
    store,
    held.map((s) => ({ digest: s.digest, exec: s.exec, data: s.data! })),
  );
  let next = 0;
  return staged.map((s) => (s.data !== undefined ? written[next++]! : commitStaged(store, s)));
}

export function discardStaged(staged: Iterable<StagedObject>): void {
  for (const s of staged) {
    if (s.tmp === undefined) continue;
    try {
      unlinkSync(s.tmp);
    } catch {
      /* gone */
    }
  }
}
