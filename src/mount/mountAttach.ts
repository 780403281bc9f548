/**
 * Putting a recorded mount in place and taking it away: starting its
 * server, mounting its overlay over whatever directory is at dest, and
 * replacing an earlier mount there.
 *
 * Replacing what is at dest:
 *  - a directory (a link farm): the new overlay is stacked on top of it —
 *    the switch is one mount(2), made by the new server itself — and the
 *    covered contents are then moved aside through a descriptor opened
 *    before the mount (/proc/self/fd/N does not cross into the mount) and
 *    deleted;
 *  - an earlier velo overlay: the new one is mounted complete at a staging
 *    directory, then two mount(MS_MOVE) calls from one shell park the old
 *    one and put the new one at dest (dest shows its bare directory only
 *    between them: about a millisecond); the old server then unmounts,
 *    deletes its layers and exits in the background (SIGUSR2). Unmounting
 *    the old one instead would leave dest bare for the kernel's RCU grace
 *    period, up to a second on a busy VM. Where mounts cannot be moved
 *    (shared propagation), the old one is detached and the new one mounted;
 *  - a FUSE view mounted at dest itself (fuse-ro, or fuse-rw: writable by
 *    copy-up): its server unmounts it first, then the new one is mounted
 *    (the view's unmount goes by path, so nothing may be stacked on it).
 */
import { closeSync, mkdirSync, openSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { VeloError, fsError } from '../errors.js';
import { removeTree } from '../projection/atomicSwap.js';
import { assertContained } from '../projection/containment.js';
import { fromServerError } from './mountAvailability.js';
import { detachMount, detachTop, mountOverlay, moveCoveredAside, moveMount, swapMounts } from './mountKernel.js';
import { ServerStartError, livePid, retireServer, startServer, stopServer } from './mountProcess.js';
import { isWritable, mountDir, removeMountDir, writeRecord, type MountRecord } from './mountRecords.js';
import { isOverlayOn, readMountTable, topMountAt } from './mountTable.js';

export function isEmptyDir(path: string): boolean {
  try {
    return readdirSync(path).length === 0;
  } catch {
    return true;
  }
}

/** Where the contents a mount covers go: deleted (in the background or not), once proven inside `within`. */
export interface CoveredCleanup {
  /** the directory the mount point must lie in (the project) */
  within: string;
  background: boolean;
}

/** Move what the mount covers aside (through fd) and delete it; the mount point and the aside are checked first. */
function clearCovered(fd: number, dest: string, cleanup: CoveredCleanup): void {
  assertContained(dest, cleanup.within);
  const aside = moveCoveredAside(fd, dest, cleanup.within);
  if (aside) removeTree(aside, cleanup.within, cleanup.background);
}

export function ensureDir(path: string, what: string): void {
  try {
    mkdirSync(path, { recursive: true, mode: 0o755 });
  } catch (err) {
    throw fsError(err, `cannot create ${what} ${path}`);
  }
}

/**
 * Start a record's server, which mounts the FUSE view and the overlay at
 * dest, stacked on whatever directory is there (nothing of velo's may be
 * mounted at dest); the covered contents are then moved aside (through a
 * descriptor opened before the mount) and deleted. Throws OverlayFailed
 * when overlayfs refused. Returns the server's pid.
 */
async function startWithOverlay(record: MountRecord, cleanup: CoveredCleanup): Promise<number> {
  const fd = isEmptyDir(record.dest) ? undefined : openSync(record.dest, 'r');
  try {
    let pid: number;
    try {
      pid = (await startServer(record, { overlay: true })).pid;
    } catch (err) {
      if (err instanceof ServerStartError && err.code === 'OVERLAY_FAILED') throw new OverlayFailed(err.message);
      throw fromServerError(err, record.dest);
    }
    if (fd !== undefined) {
      try {
        clearCovered(fd, record.dest, cleanup);
      } catch (err) {
        stopServer(pid);
        detachMount(record.dest, record.fuseAt, record.method);
        throw fsError(err, `cannot move the old contents of ${record.dest} aside`);
      }
    }
    return pid;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Start a record's server and mount its overlay (when it has one). Returns the server's pid. */
export async function bringUp(record: MountRecord, cover?: { fd: number | undefined; cleanup: CoveredCleanup }): Promise<number> {
  ensureDir(record.fuseAt, 'the mount point');
  if (isWritable(record.method)) {
    ensureDir(record.upper, 'the upper layer');
    ensureDir(record.work, 'the work directory');
  }
  writeRecord(record);
  if (record.method === 'overlay') {
    try {
      // a repair brings back a recorded mount: its dest passed the check when it was first mounted
      return await startWithOverlay(record, cover?.cleanup ?? { within: dirname(record.dest), background: false });
    } catch (err) {
      if (err instanceof OverlayFailed) throw new VeloError('IO', `cannot mount the overlay at ${record.dest}: ${err.message}`);
      throw err;
    }
  }
  let pid: number;
  try {
    pid = (await startServer(record)).pid;
  } catch (err) {
    throw fromServerError(err, record.dest);
  }
  if (cover?.fd !== undefined) clearCovered(cover.fd, record.dest, cover.cleanup);
  return pid;
}

/** Stop a mount for good: its server, whatever it left mounted, its directory and upper layer. */
export function tearDown(record: MountRecord): number | undefined {
  const pid = livePid(record);
  if (pid !== undefined) stopServer(pid);
  detachMount(record.dest, record.fuseAt, record.method);
  removeMountDir(record);
  return pid;
}

/** overlayfs refused to mount (a kernel without it, a container): the caller falls back to a copy-up view (fuse-rw) */
export class OverlayFailed extends Error {}

/**
 * Overlay method. With nothing of velo's at dest, the new server mounts the
 * FUSE view and the overlay on top of dest in one go (a directory there is
 * covered and emptied). Otherwise the new FUSE view is up before anything
 * at dest changes; an old read-only mount is stopped and the overlay
 * mounted right after; an old overlay is swapped for the new one.
 */
export async function mountOverlayReplacing(record: MountRecord, old: MountRecord[], cleanup: CoveredCleanup): Promise<number> {
  ensureDir(record.fuseAt, 'the mount point');
  ensureDir(record.upper, 'the overlay upper layer');
  ensureDir(record.work, 'the overlay work directory');
  writeRecord(record);
  if (old.length === 0) return startWithOverlay(record, cleanup);
  let pid: number;
  try {
    pid = (await startServer(record)).pid;
  } catch (err) {
    throw fromServerError(err, record.dest);
  }
  const fail = (err: unknown): never => {
    stopServer(pid);
    detachMount(record.dest, record.fuseAt, record.method);
    throw err;
  };
  // an old FUSE view sits directly at dest (fuse-ro, fuse-rw): it goes first (its server unmounts it)
  for (const o of old.filter((r) => r.method !== 'overlay')) tearDown(o);
  const oldOverlays = old.filter((r) => r.method === 'overlay');
  if (oldOverlays.length > 0) {
    switchOverlays(record, oldOverlays[oldOverlays.length - 1]!, fail);
    // the old servers unmount their overlays (now parked) and FUSE views and delete their layers in the background
    for (const o of oldOverlays) if (!retireServer(o)) tearDown(o);
    return pid;
  }
  const fd = isEmptyDir(record.dest) ? undefined : openSync(record.dest, 'r');
  try {
    const r = mountOverlay(record.fuseAt, record.upper, record.work, record.dest);
    if (!r.ok) {
      stopServer(pid);
      detachMount(record.dest, record.fuseAt, record.method);
      throw new OverlayFailed(r.message);
    }
    if (fd !== undefined) clearCovered(fd, record.dest, cleanup);
  } catch (err) {
    if (err instanceof OverlayFailed) throw err;
    fail(err);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return pid;
}

/**
 * Replace the old overlay at dest with the new one. The new overlay is
 * mounted complete at a staging directory; then the old one is moved off
 * dest (to <old mount dir>/parked) and the new one moved onto it: two
 * mount(MS_MOVE) calls, so dest shows its bare directory only between them
 * (unmounting instead would leave it bare for the kernel's RCU wait, which
 * takes up to a second on a busy VM). Where mounts cannot be moved (shared
 * propagation), the old overlay is detached and the new one mounted in place.
 */
function switchOverlays(record: MountRecord, old: MountRecord, fail: (err: unknown) => never): void {
  const dest = record.dest;
  const staging = join(mountDir(record.home, record.id), 'merged');
  const parked = join(mountDir(old.home, old.id), 'parked');
  ensureDir(staging, 'the staging mount point');
  ensureDir(parked, 'the parking mount point');
  const ready = mountOverlay(record.fuseAt, record.upper, record.work, staging);
  if (ready.ok) {
    const swap = swapMounts(dest, parked, staging);
    const table = readMountTable();
    if (isOverlayOn(topMountAt(dest, table), record.fuseAt)) return;
    if (isOverlayOn(topMountAt(parked, table), old.fuseAt)) {
      moveMount(parked, dest); // the second move failed: put the old one back
      detachTop(staging, false);
      fail(new VeloError('IO', `cannot move the new overlay onto ${dest}: ${swap.message}`));
    }
    detachTop(staging, false);
  }
  // no moving here: detach the old overlay, mount the new one in its place
  detachTop(dest, false);
  const r = mountOverlay(record.fuseAt, record.upper, record.work, dest);
  if (!r.ok) {
    mountOverlay(old.fuseAt, old.upper, old.work, dest); // put the old one back
    fail(new VeloError('IO', `cannot mount the overlay at ${dest}: ${r.message}`));
  }
}

/** fuse-rw and fuse-ro: the FUSE view itself at dest; an old mount there is stopped first. */
export async function mountViewReplacing(record: MountRecord, old: MountRecord[], cleanup: CoveredCleanup): Promise<number> {
  for (const o of old) tearDown(o);
  const fd = isEmptyDir(record.dest) ? undefined : openSync(record.dest, 'r');
  try {
    return await bringUp(record, { fd, cleanup });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
