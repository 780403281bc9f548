/**
 * The last step of every object write: a finished temporary file inside the
 * store gets the object's mode and mtime and is link()ed to its final name.
 * EEXIST means another writer got there first; both succeed. A reader never
 * sees a partial object, because the final name only ever points at a
 * complete file.
 */
import { chmodSync, linkSync, lstatSync, renameSync, unlinkSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode, fsError } from '../errors.js';
import { OBJECT_EXEC_MODE, OBJECT_MODE, OBJECT_MTIME_MS, OBJECT_MTIME_S } from './layout.js';
import { addCounters } from './counters.js';
import type { Store } from './store.js';

export interface AddResult {
  digest: string;
  size: number;
  exec: boolean;
  /** true when this call created the object; false when it was already there */
  created: boolean;
}

/** Is the object at `path` intact as far as cheap checks tell (size, mtime)? */
export function objectLooksIntact(path: string, size: number): boolean | undefined {
  // throwIfNoEntry: a missing object is the common case when ingesting, and an exception per miss is slow
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st) return undefined;
  return st.isFile() && st.size === size && st.mtimeMs === OBJECT_MTIME_MS;
}

/** Move a damaged object aside so it is never linked again. */
export function quarantineObject(store: Store, path: string, digest: string, exec: boolean): string | undefined {
  const dest = join(store.home, 'quarantine', `${digest}${exec ? 'x' : ''}.${Date.now()}.${process.pid}`);
  try {
    const size = lstatSync(path).size;
    renameSync(path, dest);
    addCounters(store, { objects: -1, object_bytes: -size });
    return dest;
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw fsError(err, `cannot quarantine ${path}`);
    return undefined;
  }
}

/** `prepared`: the temporary file already has the object's mode and mtime */
export function commitObject(store: Store, tmp: string, digest: string, exec: boolean, size: number, prepared = false): AddResult {
  const final = store.objectPath(digest, exec);
  try {
    if (!prepared) {
      chmodSync(tmp, exec ? OBJECT_EXEC_MODE : OBJECT_MODE);
      utimesSync(tmp, OBJECT_MTIME_S, OBJECT_MTIME_S);
    }
    store.ensurePrefixDir('objects', digest);
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, final);
        store.noteNewObject(size);
        return { digest, size, exec, created: true };
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST' || attempt > 0) throw err;
        if (objectLooksIntact(final, size) !== false) return { digest, size, exec, created: false };
        // the existing object was edited in place: set it aside and link ours
        quarantineObject(store, final, digest, exec);
      }
    }
  } catch (err) {
    throw fsError(err, `cannot write object ${digest}`);
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
  }
}
