/**
 * Write many finished objects that are in memory (a package's small files,
 * once its whole tarball passed) with the fewest system calls: the native
 * addon's writeObjects (native/src/object_write.c: O_TMPFILE, write,
 * futimens, linkat, close; no temporary name, no tmp/ directory shared by
 * every writer) in one call, else one by one from JavaScript
 * (writeBufferToStore). Either way an object is absent or complete under
 * its final name, and a name held by a damaged file is quarantined and
 * written again.
 */
import { fsError } from '../errors.js';
import { loadNative } from '../native.js';
import type { AddResult } from './commitObject.js';
import { OBJECT_MTIME_S } from './layout.js';
import type { Store } from './store.js';
import { writeBufferToStore } from './writeBufferToStore.js';

export interface HeldObject {
  digest: string;
  exec: boolean;
  data: Buffer;
}

const EXISTED = 0;
const CREATED = 1;

/** false once the filesystem or kernel refused O_TMPFILE: the rest of this process writes from JavaScript */
let nativeUsable = true;

function objectName(o: HeldObject): string {
  return `${o.digest.slice(0, 2)}/${o.digest.slice(2)}${o.exec ? 'x' : ''}`;
}

export function writeObjectBatch(store: Store, objects: HeldObject[]): AddResult[] {
  const native = nativeUsable && objects.length > 0 ? loadNative() : undefined;
  let statuses: Uint8Array | undefined;
  if (native?.writeObjects) {
    const exec = Uint8Array.from(objects, (o) => (o.exec ? 1 : 0));
    try {
      statuses = native.writeObjects(
        `${store.home}/objects`,
        objects.map(objectName),
        objects.map((o) => o.data),
        exec,
        OBJECT_MTIME_S,
      );
    } catch (err) {
      throw fsError(err, `cannot write to the store's objects/`);
    }
  } else if (nativeUsable) nativeUsable = false;
  return objects.map((o, i) => {
    const size = o.data.length;
    const status = statuses?.[i];
    if (status === CREATED) {
      store.noteNewObject(size);
      return { digest: o.digest, size, exec: o.exec, created: true };
    }
    if (status === EXISTED) return { digest: o.digest, size, exec: o.exec, created: false };
    if (status === 3) nativeUsable = false;
    // no native writer, or a damaged file under the name (quarantined there, then written)
    return writeBufferToStore(store, o.data, o.exec, o.digest);
  });
}
