/**
 * Ingest a directory: every file becomes an object, the directory a tree.
 * Sockets, FIFOs and devices are refused by name; so are names that are not
 * valid UTF-8. Nothing outside the store is modified.
 */
import { lstatSync, readdirSync, readlinkSync, type Dirent } from 'node:fs';
import { join } from 'node:path';
import { VeloError, errnoCode, fsError } from '../errors.js';
import { addFile } from './addFile.js';
import { putTreeBuffer } from './trees.js';
import { serializeTree, type TreeEntry } from './treeFormat.js';
import type { Store } from './store.js';

export interface IngestOptions {
  /** record every entry's mtime in the tree (cargo's target/) */
  mtimes?: boolean;
  /** skip a relative path (and everything under it) when this returns true */
  exclude?: (relPath: string, dirent: Dirent) => boolean;
  /** called after each file, for progress */
  onFile?: (relPath: string, size: number) => void;
}

export interface IngestResult {
  tree: string;
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
  newObjects: number;
  newBytes: number;
}

function kindOf(d: Dirent): string {
  if (d.isSocket()) return 'a socket';
  if (d.isFIFO()) return 'a FIFO';
  if (d.isBlockDevice()) return 'a block device';
  if (d.isCharacterDevice()) return 'a character device';
  return 'an unsupported file type';
}

export async function ingestDir(store: Store, dir: string, options: IngestOptions = {}): Promise<IngestResult> {
  let rootStat;
  try {
    rootStat = lstatSync(dir, { bigint: true });
  } catch (err) {
    throw fsError(err, `cannot ingest ${dir}`);
  }
  if (!rootStat.isDirectory()) throw new VeloError('BAD_INPUT', `cannot ingest ${dir}: not a directory`);
  const withMtimes = options.mtimes === true;
  const entries: TreeEntry[] = [];
  const result: IngestResult = { tree: '', files: 0, dirs: 0, symlinks: 0, bytes: 0, newObjects: 0, newBytes: 0 };
  const stack: string[] = [''];
  try {
    while (stack.length > 0) {
      const rel = stack.pop()!;
      const abs = rel === '' ? dir : join(dir, rel);
      let dirents: Dirent[];
      try {
        dirents = readdirSync(abs, { withFileTypes: true });
      } catch (err) {
        throw fsError(err, `cannot read directory ${abs}`);
      }
      for (const d of dirents) {
        const name = d.name;
        const childRel = rel === '' ? name : `${rel}/${name}`;
        if (name.includes('\uFFFD')) {
          throw new VeloError('UNSUPPORTED_FILE', `cannot ingest ${join(dir, childRel)}: the file name is not valid UTF-8`);
        }
        if (options.exclude?.(childRel, d)) continue;
        const childAbs = join(abs, name);
        if (d.isDirectory()) {
          const entry: TreeEntry = { path: childRel, kind: 'dir' };
          if (withMtimes) entry.mtimeNs = lstatSync(childAbs, { bigint: true }).mtimeNs;
          entries.push(entry);
          result.dirs++;
          stack.push(childRel);
        } else if (d.isSymbolicLink()) {
          const entry: TreeEntry = { path: childRel, kind: 'symlink', target: readlinkSync(childAbs) };
          if (withMtimes) entry.mtimeNs = lstatSync(childAbs, { bigint: true }).mtimeNs;
          entries.push(entry);
          result.symlinks++;
        } else if (d.isFile()) {
          const st = lstatSync(childAbs, { bigint: withMtimes }) as { size: number | bigint; mode: number | bigint; mtimeNs?: bigint };
          const size = Number(st.size);
          const exec = (Number(st.mode) & 0o100) !== 0;
          const added = await addFile(store, childAbs, exec, size);
          const entry: TreeEntry = { path: childRel, kind: 'file', exec, size: added.size, digest: added.digest };
          if (withMtimes) entry.mtimeNs = st.mtimeNs!;
          entries.push(entry);
          result.files++;
          result.bytes += added.size;
          if (added.created) {
            result.newObjects++;
            result.newBytes += added.size;
          }
          options.onFile?.(childRel, added.size);
        } else {
          throw new VeloError('UNSUPPORTED_FILE', `cannot ingest ${childAbs}: it is ${kindOf(d)}; velo stores files, directories and symlinks only`);
        }
      }
    }
  } catch (err) {
    if (err instanceof VeloError) throw err;
    if (errnoCode(err) === 'EACCES') throw new VeloError('IO', `cannot ingest: permission denied (${(err as Error).message})`, { cause: err });
    throw fsError(err, `cannot ingest ${dir}`);
  } finally {
    store.flushCounters();
  }
  const root: TreeEntry = { path: '', kind: 'dir' };
  if (withMtimes) root.mtimeNs = rootStat.mtimeNs;
  result.tree = putTreeBuffer(store, serializeTree(entries, { mtimes: withMtimes, root })).digest;
  return result;
}
