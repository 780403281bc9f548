/**
 * Put bytes that are already in memory into the store.
 */
import { closeSync, futimesSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { OBJECT_EXEC_MODE, OBJECT_MODE, OBJECT_MTIME_S } from './layout.js';
import { fsError } from '../errors.js';
import { hashBuffer } from './hash.js';
import { commitObject, objectLooksIntact, type AddResult } from './commitObject.js';
import type { Store } from './store.js';

export function writeBufferToStore(store: Store, data: Buffer, exec: boolean, knownDigest?: string): AddResult {
  const digest = knownDigest ?? hashBuffer(data);
  if (objectLooksIntact(store.objectPath(digest, exec), data.length)) {
    return { digest, size: data.length, exec, created: false };
  }
  return commitObject(store, writeTempObject(store, data, exec), digest, exec, data.length, true);
}

/** Write bytes to a temporary file in the store's tmp/ with an object's mode and mtime; returns its path. */
export function writeTempObject(store: Store, data: Buffer, exec: boolean): string {
  const tmp = store.tmpPath('obj');
  try {
    // created with the object's final mode and mtime: no chmod/utimes by path later
    const fd = openSync(tmp, 'wx', exec ? OBJECT_EXEC_MODE : OBJECT_MODE);
    try {
      let off = 0;
      while (off < data.length) off += writeSync(fd, data, off, data.length - off);
      futimesSync(fd, OBJECT_MTIME_S, OBJECT_MTIME_S);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    try {
      unlinkSync(tmp); // a full disk must not leave a partial temp file behind
    } catch {
      /* never created */
    }
    throw fsError(err, `cannot write to the store's tmp/`);
  }
  return tmp;
}
