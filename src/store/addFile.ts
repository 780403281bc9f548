/**
 * Put one file from the filesystem into the store. Small files are read
 * whole (one read, and no write at all when the object already exists);
 * large ones stream through the hash into the store.
 */
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { fsError } from '../errors.js';
import { addStream } from './addStream.js';
import { writeBufferToStore } from './writeBufferToStore.js';
import type { AddResult } from './commitObject.js';
import type { Store } from './store.js';

/** Files up to this size are hashed from one buffer. */
export const SMALL_FILE_LIMIT = 8 * 1024 * 1024;

/** Read a whole small file; undefined when it turned out to be large. */
function readSmall(path: string, expectedSize: number): Buffer | undefined {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size > SMALL_FILE_LIMIT || size !== expectedSize) return size > SMALL_FILE_LIMIT ? undefined : readAll(fd, size);
    return readAll(fd, size);
  } finally {
    closeSync(fd);
  }
}

function readAll(fd: number, size: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  let off = 0;
  while (off < size) {
    const n = readSync(fd, buf, off, size - off, off);
    if (n === 0) return buf.subarray(0, off); // the file shrank while we read it
    off += n;
  }
  return buf;
}

export async function addFile(store: Store, path: string, exec: boolean, sizeHint: number): Promise<AddResult> {
  if (sizeHint <= SMALL_FILE_LIMIT) {
    let data: Buffer | undefined;
    try {
      data = readSmall(path, sizeHint);
    } catch (err) {
      throw fsError(err, `cannot read ${path}`);
    }
    if (data) return writeBufferToStore(store, data, exec);
  }
  return addStream(store, createReadStream(path, { highWaterMark: 1024 * 1024 }), exec);
}
