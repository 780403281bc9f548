/**
 * Mount records: one directory per mount under $VELO_HOME/mounts/<id>/,
 *
 *   mount.json    what was mounted where (written by velo before the server starts)
 *   server.json   the serving process (velo-mountd): pid, start time (written by the server)
 *   server.log    the server's log
 *   lower/        where the read-only FUSE view is mounted (overlay method)
 *   upper/ work/  the writable layer (or under the caller's upperBase): the overlay's
 *                 upper and work dirs, or (fuse-rw) the server's own copy-up layer
 *                 (docs/FORMAT.md) and its scratch directory
 *
 * A record outlives the process that made it and survives a reboot, so the
 * next velo command can see what should be mounted and repair it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { VeloError, errnoCode, fsError } from '../errors.js';
import { processAlive } from '../store/lock.js';

/**
 * overlay: kernel overlayfs over the read-only FUSE view (root);
 * fuse-rw: the FUSE view at dest, writable: its server copies writes up into the upper dir itself;
 * fuse-ro: the FUSE view at dest, read-only (asked for).
 */
export type MountMethod = 'overlay' | 'fuse-rw' | 'fuse-ro';

/** Whether writes through a mount of this method land in its upper layer (else they fail with EROFS). */
export function isWritable(method: MountMethod): boolean {
  return method !== 'fuse-ro';
}

export interface MountRecord {
  version: 1;
  id: string;
  /** the store ($VELO_HOME) whose tree is served */
  home: string;
  dest: string;
  tree: string;
  method: MountMethod;
  /** the FUSE view's mount point: <mountDir>/lower for overlay, dest for fuse-rw and fuse-ro */
  fuseAt: string;
  upper: string;
  work: string;
  /** the server program that served it when it was mounted (velo-mountd; repairs use the current one) */
  server: string;
  threads: number;
  /** the project registration this mount made (gc root) */
  ecosystem: string;
  files: number;
  logicalBytes: number;
  created: number;
}

export interface ServerInfo {
  pid: number;
  /** the process's start time in clock ticks since boot: tells it from a later process with the same pid */
  ticks: string;
  id: string;
  fuseAt: string;
  started: number;
}

export function mountsRoot(home: string): string {
  return join(home, 'mounts');
}

export function mountDir(home: string, id: string): string {
  return join(mountsRoot(home), id);
}

/** Ids name the destination (so a listing groups by it) and are unique per mount. */
export function newMountId(dest: string): string {
  return `${createHash('sha256').update(dest).digest('hex').slice(0, 12)}-${randomBytes(4).toString('hex')}`;
}

function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(tmp, JSON.stringify(value, null, 1) + '\n');
  renameSync(tmp, path);
}

export function writeRecord(record: MountRecord): void {
  try {
    writeJsonAtomic(join(mountDir(record.home, record.id), 'mount.json'), record);
  } catch (err) {
    throw fsError(err, `cannot record the mount at ${record.dest}`);
  }
}

export function readRecordFile(path: string): MountRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(path, 'utf8')) as MountRecord;
    return r && r.version === 1 && typeof r.dest === 'string' && typeof r.tree === 'string' ? r : undefined;
  } catch {
    return undefined;
  }
}

export function readRecord(home: string, id: string): MountRecord | undefined {
  return readRecordFile(join(mountDir(home, id), 'mount.json'));
}

export function readServerInfo(record: MountRecord): ServerInfo | undefined {
  try {
    const s = JSON.parse(readFileSync(join(mountDir(record.home, record.id), 'server.json'), 'utf8')) as ServerInfo;
    return typeof s.pid === 'number' && s.id === record.id ? s : undefined;
  } catch {
    return undefined;
  }
}

/** Every record in the store, oldest first. */
export function listRecords(home: string): MountRecord[] {
  let names: string[];
  try {
    names = readdirSync(mountsRoot(home));
  } catch {
    return [];
  }
  const out: MountRecord[] = [];
  for (const name of names) {
    if (name.startsWith('.')) continue;
    const r = readRecord(home, name);
    if (r && r.id === name) out.push(r);
  }
  return out.sort((a, b) => a.created - b.created || a.id.localeCompare(b.id));
}

export function recordsFor(home: string, dest: string): MountRecord[] {
  return listRecords(home).filter((r) => r.dest === dest);
}

/** Remove a mount's directory (its upper layer too). Its mount points must be unmounted. */
export function removeMountDir(record: MountRecord): void {
  const dir = mountDir(record.home, record.id);
  const upperRoot = join(record.upper, '..');
  // drop the record first: a half-removed directory is then no longer a mount
  try {
    unlinkSync(join(dir, 'mount.json'));
  } catch {
    /* already gone */
  }
  for (const d of upperRoot === dir ? [dir] : [dir, upperRoot]) {
    try {
      rmSync(d, { recursive: true, force: true, maxRetries: 2 });
    } catch {
      /* best effort: something in it is still mounted or busy; a later velo run finds no record and leaves it */
    }
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Mount changes in one store are serialized by a lock file holding the
 * holder's pid (a dead holder's lock is taken over), so two velo commands
 * never repair or replace the same mount at once.
 */
export function withMountLock<T>(home: string, fn: () => T): T {
  const root = mountsRoot(home);
  mkdirSync(root, { recursive: true });
  const lock = join(root, '.lock');
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx', 0o644);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw fsError(err, `cannot lock ${root}`);
      let holder = 0;
      try {
        holder = Number(readFileSync(lock, 'utf8'));
      } catch {
        continue;
      }
      if (holder > 0 && !processAlive(holder)) {
        // take over a dead holder's lock: rename is atomic, so only one taker wins
        const aside = `${lock}.stale.${process.pid}`;
        try {
          renameSync(lock, aside);
          // another taker may have re-created the lock in between: give a live one back
          if (Number(readFileSync(aside, 'utf8')) !== holder) renameSync(aside, lock);
          else rmSync(aside, { force: true });
        } catch {
          /* someone else took it over */
        }
        continue;
      }
      if (Date.now() > deadline) {
        throw new VeloError('LOCKED', `mounts in ${home} are being changed by another velo process (pid ${holder})`);
      }
      sleepSync(20);
    }
  }
  const release = (): void => {
    try {
      if (Number(readFileSync(lock, 'utf8')) === process.pid) unlinkSync(lock);
    } catch {
      /* gone */
    }
  };
  try {
    const result = fn();
    if (result instanceof Promise) {
      return result.finally(release) as T;
    }
    release();
    return result;
  } catch (err) {
    release();
    throw err;
  }
}
