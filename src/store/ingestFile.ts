/**
 * Put one regular file that a directory walk found into the store, and say
 * what its tree entry needs (digest, size, exec bit, mtime). The ingest
 * workers run this, and so does ingestDir itself for small trees.
 *
 * The file is opened with O_NOFOLLOW | O_NONBLOCK and checked with fstat:
 * if the name was swapped for a symlink, FIFO or device after the walk saw
 * a regular file, this refuses it instead of following it or blocking.
 * Everything after the open goes through the fd, never the name again.
 */
import { closeSync, constants, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { VeloError, errnoCode, fsError } from '../errors.js';
import { SMALL_FILE_LIMIT } from './addFile.js';
import { addStream } from './addStream.js';
import { writeBufferToStore } from './writeBufferToStore.js';
import type { Store } from './store.js';

export interface IngestedFile {
  digest: string;
  size: number;
  exec: boolean;
  /** this call created the object (it was not in the store) */
  created: boolean;
  /** only when asked for */
  mtimeNs?: bigint;
}

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

function changedUnderUs(path: string): VeloError {
  return new VeloError('UNSUPPORTED_FILE', `cannot ingest ${path}: it stopped being a regular file while it was being ingested`);
}

export async function ingestFile(store: Store, path: string, withMtimes: boolean): Promise<IngestedFile> {
  let fd: number;
  try {
    fd = openSync(path, OPEN_FLAGS);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ELOOP' || code === 'ENXIO') throw changedUnderUs(path);
    if (code === 'EACCES') throw new VeloError('IO', `cannot ingest ${path}: permission denied`, { cause: err });
    throw fsError(err, `cannot read ${path}`);
  }
  let streamed = false;
  try {
    const st = fstatSync(fd, { bigint: withMtimes }) as { size: number | bigint; mode: number | bigint; mtimeNs?: bigint; isFile(): boolean };
    if (!st.isFile()) throw changedUnderUs(path);
    const size = Number(st.size);
    const exec = (Number(st.mode) & 0o100) !== 0;
    const mtime = withMtimes ? { mtimeNs: st.mtimeNs! } : {};
    if (size > SMALL_FILE_LIMIT) {
      // large: stream from the same fd through the hash into the store
      streamed = true;
      const added = await addStream(store, createReadStream('', { fd, autoClose: true, start: 0, highWaterMark: 1024 * 1024 }), exec);
      return { digest: added.digest, size: added.size, exec, created: added.created, ...mtime };
    }
    let data: Buffer;
    try {
      data = readWhole(fd, size, scratchFor(size));
    } catch (err) {
      throw fsError(err, `cannot read ${path}`);
    }
    const added = writeBufferToStore(store, data, exec);
    return { digest: added.digest, size: added.size, exec, created: added.created, ...mtime };
  } finally {
    if (!streamed) closeSync(fd);
  }
}

/**
 * One read buffer per thread, reused: small files are read into it and
 * written to the store before the next file is read (writeBufferToStore is
 * synchronous and keeps no reference), which spares a malloc and the GC
 * work for every file.
 */
let scratch: Buffer | undefined;
function scratchFor(size: number): Buffer {
  if (!scratch || scratch.length < size) scratch = Buffer.allocUnsafeSlow(Math.max(size, 1024 * 1024));
  return scratch;
}

/** Read `size` bytes from offset 0 into `into`; fewer if the file shrank meanwhile. */
function readWhole(fd: number, size: number, into: Buffer): Buffer {
  const buf = into.subarray(0, size);
  let off = 0;
  while (off < size) {
    const n = readSync(fd, buf, off, size - off, off);
    if (n === 0) return buf.subarray(0, off);
    off += n;
  }
  return buf;
}
