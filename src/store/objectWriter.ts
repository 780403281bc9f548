/**
 * Write one object from chunks that arrive synchronously (a tar entry's
 * data events): small contents are gathered and written in one go, large
 * ones go straight to a temporary file in the store while being hashed, so
 * memory stays bounded whatever the size.
 */
import { closeSync, futimesSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { fsError } from '../errors.js';
import { createHash, type IncrementalHash } from './hash.js';
import { commitObject, type AddResult } from './commitObject.js';
import { OBJECT_EXEC_MODE, OBJECT_MODE, OBJECT_MTIME_S } from './layout.js';
import { SMALL_FILE_LIMIT } from './addFile.js';
import { writeBufferToStore } from './writeBufferToStore.js';
import type { Store } from './store.js';

export class ObjectWriter {
  readonly #store: Store;
  readonly #exec: boolean;
  #chunks: Buffer[] = [];
  #size = 0;
  #fd = -1;
  #tmp = '';
  #hash: IncrementalHash | undefined;

  constructor(store: Store, exec: boolean, expectedSize: number) {
    this.#store = store;
    this.#exec = exec;
    if (expectedSize > SMALL_FILE_LIMIT) this.#toFile();
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
      if (this.#size > SMALL_FILE_LIMIT) this.#toFile();
    }
  }

  /** Commit; `transform` may rewrite small contents first (e.g. a bin's CRLF shebang). */
  finish(transform?: (data: Buffer) => Buffer): AddResult {
    if (this.#fd < 0) {
      const data = Buffer.concat(this.#chunks, this.#size);
      this.#chunks = [];
      return writeBufferToStore(this.#store, transform ? transform(data) : data, this.#exec);
    }
    try {
      futimesSync(this.#fd, OBJECT_MTIME_S, OBJECT_MTIME_S);
      closeSync(this.#fd);
    } catch (err) {
      this.abort();
      throw fsError(err, 'cannot write to the store');
    }
    this.#fd = -1;
    return commitObject(this.#store, this.#tmp, this.#hash!.digestHex(), this.#exec, this.#size, true);
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
  }
}
