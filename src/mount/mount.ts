/**
 * The mount projection: a store tree shown at a directory without a file
 * being linked. A read-only FUSE view of the tree (served by one small
 * detached C process per mount, velo-mountd: native/src/mountd.c, started by
 * mountProcess.ts) is the lower layer of a kernel overlayfs whose upper layer
 * takes every write, so the store is never writable through a mount:
 *
 *   $VELO_HOME/mounts/<id>/lower   the FUSE view (private)
 *   $VELO_HOME/mounts/<id>/upper   writes, copy-ups, whiteouts  ┐ or under
 *   $VELO_HOME/mounts/<id>/work    overlayfs' scratch           ┘ options.upperBase/<id>/
 *   <dest>                         overlay(lower, upper)
 *
 * Where overlayfs cannot be mounted (not root, or refused), the FUSE view
 * itself is mounted at <dest>, writable: its server copies every write up
 * into the same upper directory, in velo's own layout (docs/FORMAT.md),
 * since an unprivileged process cannot make overlayfs whiteouts (method
 * 'fuse-rw'; forced with copyUp or VELO_MOUNT_OVERLAY=0):
 *
 *   $VELO_HOME/mounts/<id>/upper   writes, copy-ups, .velo.wh.* whiteouts  ┐ or under
 *   $VELO_HOME/mounts/<id>/work    the server's scratch (copies in progress) ┘ options.upperBase/<id>/
 *   <dest>                         the FUSE view, writable
 *
 * `overlay: false` mounts the view read-only instead (method 'fuse-ro').
 * Where FUSE is unavailable, mountProjection throws FUSE_UNAVAILABLE and
 * the caller links instead.
 *
 * What was at <dest> is replaced (mountAttach.ts says how): a directory
 * (a link farm) is covered by the new mount in one mount(2) and then
 * deleted; an earlier velo mount is swapped for the new one by two moves
 * about a millisecond apart. The same tree already mounted and healthy is
 * left alone.
 *
 * Every entry point first repairs stale mounts (a killed server leaves
 * "Transport endpoint is not connected"): the dead mounts are detached
 * lazily and the recorded tree mounted again over the same upper layer.
 */
import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { VeloError, fsError } from '../errors.js';
import { registerProject, unregisterProject } from '../store/keys.js';
import { acquireLease } from '../store/lock.js';
import { defaultHome } from '../config.js';
import { Store } from '../store/store.js';
import { readTreeBuffer } from '../store/trees.js';
import { parseTree, readTreeHeader } from '../store/treeFormat.js';
import { recoverLeftovers } from '../projection/atomicSwap.js';
import { OverlayFailed, ensureDir, isEmptyDir, mountOverlayReplacing, mountViewReplacing, tearDown } from './mountAttach.js';
import { requireFuse } from './mountAvailability.js';
import { checkMount, type MountHealth } from './mountHealth.js';
import { checkOverlayPath, detachTop, removeEmptyDir } from './mountKernel.js';
import { serverBinary } from './mountProcess.js';
import {
  isWritable, listRecords, mountDir, newMountId, readServerInfo, recordsFor, removeMountDir, withMountLock, writeRecord, type MountMethod, type MountRecord,
} from './mountRecords.js';
import { repairLocked, type RepairReport } from './mountRepair.js';
import { isOverlayOn, isVeloFuse, readMountTable, topMountAt, type MountEntry } from './mountTable.js';
import { summarizeUpper, type UpperSummary } from './mountUpper.js';
import { assertContained, projectionTarget } from '../projection/containment.js';

export type { MountMethod } from './mountRecords.js';

export interface MountOptions {
  /** the directory the mount point must lie in (the project): velo creates, moves and deletes nothing outside it */
  within: string;
  /** put the writable layer in <upperBase>/<id>/{upper,work} instead of $VELO_HOME/mounts/<id>/ (same filesystem for both) */
  upperBase?: string;
  /** the project registration (gc root) this mount makes; default 'mount' */
  ecosystem?: string;
  /** package/snapshot keys the project uses (kept alive by gc), passed to registerProject */
  keys?: string[];
  packages?: number;
  /** false: the read-only FUSE view at dest, no overlay (writes fail with EROFS) */
  overlay?: boolean;
  /**
   * true: writes are copied up by the mount's own server (method 'fuse-rw')
   * even where kernel overlayfs could be mounted; default: $VELO_MOUNT_OVERLAY=0
   * means true. Without root, or where overlayfs is refused, that is what
   * happens anyway.
   */
  copyUp?: boolean;
  /** FUSE worker threads (default: the addon's, 2 × CPUs within 4..16) */
  threads?: number;
  /** delete a replaced link farm in a detached process (the CLI does) */
  backgroundRemoval?: boolean;
  /**
   * Replace even a healthy mount of the same tree, so the new one starts with
   * an empty writable layer; swapped in atomically like any replacement (a
   * sync that must undo edits made through the mount)
   */
  freshUpper?: boolean;
}

export interface MountResult {
  dest: string;
  tree: string;
  /** the server process serving the mount */
  pid: number;
  /** the writable layer (the overlay's upper dir, or the copy-up layer of 'fuse-rw'); undefined for 'fuse-ro' */
  upper: string | undefined;
  method: MountMethod;
  id: string;
  /** why the mount is read-only (method 'fuse-ro') */
  readOnlyReason: string | undefined;
  /** the same tree was already mounted there and healthy: nothing was done */
  reused: boolean;
  /** what was at dest before: nothing (or an empty dir), a directory (link farm), a velo mount */
  replaced: 'nothing' | 'directory' | 'mount';
  files: number;
  logicalBytes: number;
  /** stale mounts repaired first */
  repaired: RepairReport[];
  ms: number;
}

export type { RepairReport } from './mountRepair.js';
export { repairStaleMounts } from './mountRepair.js';
export { fuseUnavailableReason } from './mountAvailability.js';

export interface MountStatus {
  id: string;
  dest: string;
  tree: string;
  method: MountMethod;
  state: 'mounted' | 'stale';
  reason: string | undefined;
  pid: number | undefined;
  started: number | undefined;
  created: number;
  ecosystem: string;
  files: number;
  logicalBytes: number;
  upper: string | undefined;
  /** what the upper layer holds (undefined for fuse-ro) */
  upperSummary: UpperSummary | undefined;
}

export interface UnmountResult {
  dest: string;
  id: string;
  tree: string;
  method: MountMethod;
  /** the server that was stopped (undefined: it was already gone) */
  pid: number | undefined;
  /** the upper layer that was deleted with the mount */
  upper: string | undefined;
}

// ---- helpers --------------------------------------------------------------

/** File count from a tree's entries (kind byte 2), without parsing names. */
function countFiles(buf: Buffer, n: number): number {
  let files = 0;
  for (let i = 0, off = 32; i < n; i++, off += 64) if (buf[off] === 2) files++;
  return files;
}

/**
 * Every entry at the top of the tree is missing from the mounted view (what
 * `rm -rf` through a writable mount leaves): the view was emptied.
 */
export function viewEmptied(buf: Buffer, dest: string): boolean {
  const top = parseTree(buf).entries.filter((e) => e.index !== 0 && e.parent === 0).map((e) => e.name);
  if (top.length === 0) return false;
  let shown: Set<string>;
  try {
    shown = new Set(readdirSync(dest));
  } catch {
    return false; // not readable: the health check and repair deal with it
  }
  return top.every((name) => !shown.has(name));
}

/** dest must be a directory (or missing); returns what is there. */
function inspectDest(dest: string): 'missing' | 'dir' {
  try {
    const st = lstatSync(dest);
    if (st.isSymbolicLink()) throw new VeloError('REFUSED', `${dest} is a symbolic link; velo mounts only on a directory`);
    if (!st.isDirectory()) throw new VeloError('REFUSED', `${dest} is not a directory; velo will not replace it with a mount`);
    return 'dir';
  } catch (err) {
    if (err instanceof VeloError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'missing';
    if (code === 'ENOTCONN') return 'dir'; // a dead mount: repair detached ours; a foreign one is refused below
    throw fsError(err, `cannot inspect ${dest}`);
  }
}

function healthyRecords(home: string, dest: string): { record: MountRecord; health: MountHealth }[] {
  const table = readMountTable();
  return recordsFor(home, dest)
    .map((record) => ({ record, health: checkMount(record, table) }))
    .filter((x) => x.health.state === 'mounted');
}

// ---- mount ----------------------------------------------------------------

/**
 * Mount `tree` at `dest` (see the top of this file). Throws
 * FUSE_UNAVAILABLE (fall back to linking), NOT_FOUND (unknown tree),
 * REFUSED (dest is a file, a symlink, or someone else's mount point).
 */
export async function mountProjection(store: Store, tree: string, destination: string, options: MountOptions): Promise<MountResult> {
  const t0 = performance.now();
  const target = projectionTarget(resolve(destination), options.within);
  const dest = target.dest;
  const buf = readTreeBuffer(store, tree);
  const header = readTreeHeader(buf);
  const files = countFiles(buf, header.count);
  const logicalBytes = header.logicalSize;
  requireFuse();
  const lease = acquireLease(store, 'install');
  try {
    return await withMountLock(store.home, async () => {
      const repaired = await repairLocked(store, dest);
      const current = healthyRecords(store.home, dest);
      const writable = options.overlay !== false;
      const copyUp = options.copyUp ?? process.env.VELO_MOUNT_OVERLAY === '0';
      const isRoot = process.getuid?.() === 0;
      const desired: MountMethod = !writable ? 'fuse-ro' : isRoot && !copyUp ? 'overlay' : 'fuse-rw';
      // a copy-up mount where an overlay was refused (or forced) still counts as the writable mount asked for
      const same = current.find((c) => c.record.tree === tree && (c.record.method === desired || (desired === 'overlay' && c.record.method === 'fuse-rw')));
      const register = (record: MountRecord): void =>
        registerProject(store, {
          path: dest,
          ecosystem: record.ecosystem,
          tree,
          method: record.method,
          projection: 'mount',
          logicalBytes,
          files,
          ...(options.keys ? { keys: options.keys } : {}),
          ...(options.packages !== undefined ? { packages: options.packages } : {}),
        });
      // `rm -rf` on a writable mount deletes every entry through it (whiteouts in the upper layer) and
      // ends on EBUSY at the mount point: reusing that mount would show an empty view, so start afresh
      const emptied = same !== undefined && viewEmptied(buf, dest);
      if (same && current.length === 1 && !options.freshUpper && !emptied) {
        if (options.ecosystem && options.ecosystem !== same.record.ecosystem) {
          same.record.ecosystem = options.ecosystem;
          writeRecord(same.record);
        }
        register(same.record);
        return result(same.record, same.health.pid!, { reused: true, replaced: 'mount', repaired, t0, readOnlyReason: undefined });
      }
      const old = current.map((c) => c.record);
      const top = topMountAt(dest);
      if (top && !old.some((r) => (r.method === 'overlay' ? isOverlayOn(top, r.fuseAt) : isVeloFuse(top)))) {
        throw new VeloError('REFUSED', `${dest} is a mount point (${top.fsType}) that velo did not make; unmount it first`);
      }
      const existed = inspectDest(dest) === 'dir';
      if (!existed) recoverLeftovers(target);
      ensureDir(assertContained(dest, target.within), 'the mount point');
      const replaced: MountResult['replaced'] = old.length > 0 ? 'mount' : isEmptyDir(dest) ? 'nothing' : 'directory';

      const id = newMountId(dest);
      const dir = mountDir(store.home, id);
      const upperRoot = options.upperBase ? join(resolve(options.upperBase), id) : dir;
      const method: MountMethod = desired;
      let readOnlyReason = method === 'fuse-ro' ? 'asked for a read-only mount' : undefined;
      const record: MountRecord = {
        version: 1,
        id,
        home: store.home,
        dest,
        tree,
        method,
        fuseAt: method === 'overlay' ? join(dir, 'lower') : dest,
        upper: join(upperRoot, 'upper'),
        work: join(upperRoot, 'work'),
        server: serverBinary() ?? '',
        threads: options.threads ?? 0,
        ecosystem: options.ecosystem ?? old[0]?.ecosystem ?? 'mount',
        files,
        logicalBytes,
        created: Date.now(),
      };
      if (method === 'overlay') for (const p of [record.fuseAt, record.upper, record.work]) checkOverlayPath(p);
      ensureDir(dir, 'the mount directory');

      const cleanup = { within: target.within, background: options.backgroundRemoval ?? false };
      let pid: number;
      try {
        if (method === 'overlay') pid = await mountOverlayReplacing(record, old, cleanup);
        else pid = await mountViewReplacing(record, old, cleanup);
      } catch (err) {
        if (method === 'overlay' && err instanceof OverlayFailed) {
          // overlayfs refused (a kernel without it, a container): the server copies writes up itself
          removeMountDir(record);
          record.method = 'fuse-rw';
          record.fuseAt = dest;
          readOnlyReason = undefined;
          ensureDir(dir, 'the mount directory');
          try {
            pid = await mountViewReplacing(record, old, cleanup);
          } catch (err2) {
            removeMountDir(record);
            throw err2;
          }
        } else {
          removeMountDir(record);
          if (!existed) removeEmptyDir(dest);
          throw err;
        }
      }
      register(record);
      return result(record, pid, { reused: false, replaced, repaired, t0, readOnlyReason });
    });
  } finally {
    lease.release();
  }
}

function result(
  record: MountRecord,
  pid: number,
  x: { reused: boolean; replaced: MountResult['replaced']; repaired: RepairReport[]; t0: number; readOnlyReason: string | undefined },
): MountResult {
  return {
    dest: record.dest,
    tree: record.tree,
    pid,
    upper: isWritable(record.method) ? record.upper : undefined,
    method: record.method,
    id: record.id,
    readOnlyReason: x.readOnlyReason ?? (record.method === 'fuse-ro' ? 'read-only mount' : undefined),
    reused: x.reused,
    replaced: x.replaced,
    files: record.files,
    logicalBytes: record.logicalBytes,
    repaired: x.repaired,
    ms: performance.now() - x.t0,
  };
}

// ---- unmount --------------------------------------------------------------

/**
 * The store a mount at dest belongs to: from its overlay's lower layer
 * ($VELO_HOME/mounts/<id>/lower), or from the source a FUSE view at dest
 * carries (velo:$VELO_HOME/mounts/<id>, set by velo-mountd).
 */
function homeOfMount(dest: string): string | undefined {
  const top = topMountAt(dest);
  if (isVeloFuse(top) && top!.source.startsWith('velo:/')) return dirname(dirname(top!.source.slice('velo:'.length)));
  if (top?.fsType !== 'overlay') return undefined;
  const lower = /lowerdir=([^,]+)/.exec(top.superOptions)?.[1];
  if (!lower || !lower.endsWith('/lower')) return undefined;
  return dirname(dirname(dirname(lower)));
}

export interface UnmountOptions {
  /** the store the mount belongs to (default: found from the mount itself, else $VELO_HOME) */
  store?: Store;
}

/**
 * Unmount what velo mounted at dest: its server is stopped (it detaches the
 * overlay and its FUSE view), the upper layer is deleted and the project
 * registration dropped. dest is left as an empty directory. Throws
 * NOT_FOUND when velo has nothing mounted there.
 */
export async function unmountProjection(destination: string, options: UnmountOptions = {}): Promise<UnmountResult> {
  const dest = resolve(destination);
  const home = options.store?.home ?? homeOfMount(dest) ?? defaultHome();
  const own = options.store === undefined && existsSync(join(home, 'store.json')) ? Store.open(home) : options.store;
  try {
    return withMountLock(home, () => {
      const records = recordsFor(home, dest);
      if (records.length === 0) {
        const top = topMountAt(dest);
        if (top && (isVeloFuse(top) || (top.fsType === 'overlay' && top.source === 'velo'))) {
          detachTop(dest, isVeloFuse(top));
          return { dest, id: '', tree: '', method: isVeloFuse(top) ? 'fuse-ro' : 'overlay', pid: undefined, upper: undefined } satisfies UnmountResult;
        }
        throw new VeloError('NOT_FOUND', `nothing velo mounted is at ${dest}`);
      }
      let last: UnmountResult | undefined;
      for (const record of records) {
        const pid = tearDown(record);
        if (own) unregisterProject(own, dest, record.ecosystem);
        last = { dest, id: record.id, tree: record.tree, method: record.method, pid, upper: isWritable(record.method) ? record.upper : undefined };
      }
      return last!;
    });
  } finally {
    if (own && own !== options.store) own.close();
  }
}

/** Unmount every mount of the store. */
export async function unmountAll(store: Store): Promise<UnmountResult[]> {
  const dests = [...new Set(listRecords(store.home).map((r) => r.dest))];
  const out: UnmountResult[] = [];
  for (const dest of dests) out.push(await unmountProjection(dest, { store }));
  return out;
}

// ---- list -----------------------------------------------------------------

/** The velo mount at dest (healthy or stale), if there is one: callers that would link into dest unmount it first. */
export function mountAt(store: Store, destination: string): MountStatus | undefined {
  const dest = resolve(destination);
  const record = recordsFor(store.home, dest).at(-1);
  return record ? statusOf(record, readMountTable()) : undefined;
}

/** What the store has mounted: from which tree, served by which process, what the upper layer holds. Changes nothing. */
export function listMounts(store: Store): MountStatus[] {
  const table = readMountTable();
  return listRecords(store.home).map((record) => statusOf(record, table));
}

function statusOf(record: MountRecord, table: MountEntry[]): MountStatus {
  const health = checkMount(record, table);
  const writable = isWritable(record.method);
  return {
    id: record.id,
    dest: record.dest,
    tree: record.tree,
    method: record.method,
    state: health.state,
    reason: health.reason,
    pid: health.pid,
    started: health.pid !== undefined ? readServerInfo(record)?.started : undefined,
    created: record.created,
    ecosystem: record.ecosystem,
    files: record.files,
    logicalBytes: record.logicalBytes,
    upper: writable ? record.upper : undefined,
    upperSummary: writable ? summarizeUpper(record.upper) : undefined,
  };
}
