/**
 * Stream bytes of unknown or large size into the store: one pass writes a
 * temporary file inside the store while hashing, then commits it. Memory
 * stays constant whatever the size.
 */
import { createWriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fsError } from '../errors.js';
import { createHash } from './hash.js';
import { commitObject, type AddResult } from './commitObject.js';
import type { Store } from './store.js';

export async function addStream(store: Store, source: Readable, exec: boolean): Promise<AddResult> {
  const hash = createHash();
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  const tmp = store.tmpPath('obj');
  try {
    await pipeline(source, tap, createWriteStream(tmp, { flags: 'wx', mode: 0o600 }));
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw fsError(err, 'cannot stream into the store');
  }
  return commitObject(store, tmp, hash.digestHex(), exec, size);
}
