/**
 * The kernel side of a mount: mounting the overlay, lazily unmounting what
 * a dead server left behind, and moving a directory's old contents out from
 * under a mount stacked on top of it.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, renameSync, rmdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { VeloError } from '../errors.js';
import type { MountMethod } from './mountRecords.js';
import { isOverlayOn, isVeloFuse, readMountTable, topMountAt } from './mountTable.js';
import { assertContained } from '../projection/containment.js';

/**
 * The explicit, safe overlay options for a FUSE lower layer: it has no file
 * handles for index/nfs_export and its inode numbers are per mount (no xino).
 */
const OVERLAY_OPTIONS = 'index=off,xino=off,redirect_dir=off,metacopy=off';

/** overlayfs separates layers with ':' and options with ','; we refuse those in our own paths */
export function checkOverlayPath(path: string): void {
  if (/[,:\\\n]/.test(path)) {
    throw new VeloError('BAD_INPUT', `cannot use ${JSON.stringify(path)} as an overlay layer: it contains ',', ':', '\\' or a newline`, {
      hint: 'point VELO_HOME (or upperBase) at a path without those characters',
    });
  }
}

export interface RunResult {
  ok: boolean;
  message: string;
}

function run(cmd: string, args: string[]): RunResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) return { ok: false, message: `${cmd}: ${r.error.message}` };
  return { ok: r.status === 0, message: (r.stderr || r.stdout || '').trim() };
}

export function mountOverlay(lower: string, upper: string, work: string, dest: string): RunResult {
  return run('mount', ['-t', 'overlay', 'velo', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work},${OVERLAY_OPTIONS}`, dest]);
}

/** Move the top mount at `from` to `to` (no unmount, so no wait for RCU). Fails under shared mount propagation. */
export function moveMount(from: string, to: string): RunResult {
  return run('mount', ['--move', from, to]);
}

/**
 * Move the mount at dest to parked and the one at staging onto dest, from
 * one shell, so the second move follows the first by one fork+exec. Which
 * moves happened is for the caller to read from the mount table.
 */
export function swapMounts(dest: string, parked: string, staging: string): RunResult {
  return run('sh', ['-c', 'mount --move "$1" "$2" && exec mount --move "$3" "$1"', 'velo-swap', dest, parked, staging]);
}

/** Lazily unmount the top mount at path: fusermount3 -uz for FUSE (works unprivileged), else umount -l. */
export function detachTop(path: string, fuse: boolean): RunResult {
  if (fuse) {
    const r = run('fusermount3', ['-uz', path]);
    if (r.ok) return r;
  }
  return run('umount', ['-l', path]);
}

/**
 * Detach what a mount left at its places, top down: the overlay at dest
 * whose lower layer is `lower` (or, with fuse-ro and fuse-rw, velo's FUSE view at dest),
 * then the FUSE view at `lower`. Never touches someone else's mount.
 * Returns what was detached.
 */
export function detachMount(dest: string, fuseAt: string, method: MountMethod): string[] {
  const done: string[] = [];
  // an overlay may also sit where a replacement staged or parked it (beside its lower layer)
  const places = method === 'overlay' ? [dest, join(dirname(fuseAt), 'merged'), join(dirname(fuseAt), 'parked')] : [dest];
  for (const place of places) {
    for (let i = 0; i < 8; i++) {
      const top = topMountAt(place, readMountTable());
      const ours = method === 'overlay' ? isOverlayOn(top, fuseAt) : isVeloFuse(top);
      if (!ours) break;
      if (!detachTop(place, method !== 'overlay').ok) break;
      done.push(place);
    }
  }
  if (method === 'overlay') {
    for (let i = 0; i < 8; i++) {
      if (!isVeloFuse(topMountAt(fuseAt, readMountTable()))) break;
      if (!detachTop(fuseAt, true).ok) break;
      done.push(fuseAt);
    }
  }
  return done;
}

/**
 * A directory's old contents, still reachable through `/proc/self/fd/<fd>`
 * (opened before a mount covered it: that path does not cross into the
 * mount), are moved into a fresh sibling `.<name>.velo-old-<pid>-<rand>`
 * (the name atomicSwap's recoverLeftovers cleans up) and that is returned,
 * or undefined when there was nothing.
 */
export function moveCoveredAside(fd: number, dest: string, within: string): string | undefined {
  const covered = `/proc/self/fd/${fd}`;
  const names = readdirSync(covered);
  if (names.length === 0) return undefined;
  const aside = assertContained(join(dirname(dest), `.${basename(dest)}.velo-old-${process.pid}-${randomBytes(4).toString('hex')}`), within);
  mkdirSync(aside, { mode: 0o700 });
  for (const name of names) renameSync(join(covered, name), join(aside, name));
  return aside;
}

/** An empty directory made for a mount point, removed again (best effort). */
export function removeEmptyDir(path: string): void {
  try {
    rmdirSync(path);
  } catch {
    /* not empty, still a mount point, or gone */
  }
}
