/**
 * Build-beside-and-swap. A new tree is built in a hidden sibling of its
 * destination (".<name>.velo-new-<pid>-<rand>") and swapped in with two
 * renames; the old tree is renamed aside (".<name>.velo-old-<pid>-<rand>")
 * and deleted after the new one is in place. A crash at any point leaves
 * either the old or the new tree at the destination, except in the window
 * between the two renames, which the next run repairs by renaming the old
 * tree back. Leftovers of dead processes are removed by the next run.
 *
 * Every path created, renamed or deleted here is checked against the
 * target's `within` directory first (containment.ts).
 */
import { mkdirSync, readdirSync, renameSync, rmSync, existsSync, lstatSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fsError } from '../errors.js';
import { processAlive } from '../store/lock.js';
import { assertContained, type ProjectionTarget } from './containment.js';

export type { ProjectionTarget };

const PART = /^\.(.+)\.velo-(new|old)-(\d+)-[0-9a-f]+$/;

function sibling(dest: string, kind: 'new' | 'old'): string {
  return join(dirname(dest), `.${basename(dest)}.velo-${kind}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

export function createStaging(target: ProjectionTarget): string {
  const dest = assertContained(target.dest, target.within);
  const staging = assertContained(sibling(dest, 'new'), target.within);
  try {
    mkdirSync(dirname(dest), { recursive: true });
    mkdirSync(staging, { mode: 0o755 });
  } catch (err) {
    throw fsError(err, `cannot create a staging directory beside ${dest}`);
  }
  return staging;
}

/** Delete a tree velo made (a staging or aside directory), once it is proven to lie inside `within`. */
export function removeTree(path: string, within: string, background = false): void {
  assertContained(path, within);
  if (!existsSync(path)) return;
  if (background) {
    const child = spawn('rm', ['-rf', '--', path], { detached: true, stdio: 'ignore' });
    child.on('error', () => rmSync(path, { recursive: true, force: true }));
    child.unref();
    return;
  }
  rmSync(path, { recursive: true, force: true, maxRetries: 2 });
}

export interface RecoverResult {
  /** an old tree was renamed back because the destination was missing */
  restored: boolean;
  removed: string[];
}

/** Clean up what dead velo processes left beside dest. */
export function recoverLeftovers(target: ProjectionTarget): RecoverResult {
  const dest = assertContained(target.dest, target.within);
  const dir = dirname(dest);
  const name = basename(dest);
  const result: RecoverResult = { restored: false, removed: [] };
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return result;
  }
  const olds: string[] = [];
  for (const n of names) {
    const m = PART.exec(n);
    if (!m || m[1] !== name || processAlive(Number(m[3]))) continue;
    if (m[2] === 'old') olds.push(join(dir, n));
    else {
      removeTree(join(dir, n), target.within);
      result.removed.push(join(dir, n));
    }
  }
  let destExists = true;
  try {
    lstatSync(dest);
  } catch {
    destExists = false;
  }
  for (const old of olds) {
    if (!destExists) {
      renameSync(assertContained(old, target.within), dest);
      destExists = true;
      result.restored = true;
    } else {
      removeTree(old, target.within);
      result.removed.push(old);
    }
  }
  return result;
}

/**
 * Swap staging into dest; the old tree (if any) is deleted afterwards, or,
 * with keepOld, left aside and its path returned so the caller can roll
 * back (restoreAside) or finish (removeTree).
 */
export function swapIntoPlace(staging: string, target: ProjectionTarget, options: { backgroundRemoval?: boolean; keepOld?: boolean } = {}): string | undefined {
  const dest = assertContained(target.dest, target.within);
  assertContained(staging, target.within);
  let old: string | undefined;
  try {
    try {
      lstatSync(dest);
      old = assertContained(sibling(dest, 'old'), target.within);
      renameSync(dest, old);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    try {
      renameSync(staging, dest);
    } catch (err) {
      if (old) renameSync(old, dest);
      throw err;
    }
  } catch (err) {
    throw fsError(err, `cannot swap the new tree into ${dest}`);
  }
  if (old && options.keepOld) return old;
  if (old) removeTree(old, target.within, options.backgroundRemoval ?? false);
  return undefined;
}

/** Undo a swap: the new tree at dest goes away and the old one (if any) comes back. */
export function restoreAside(target: ProjectionTarget, aside: string | undefined): void {
  const dest = assertContained(target.dest, target.within);
  const failed = assertContained(sibling(dest, 'old'), target.within);
  try {
    renameSync(dest, failed);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(err, `cannot roll back ${dest}`);
  }
  if (aside) renameSync(assertContained(aside, target.within), dest);
  removeTree(failed, target.within);
}
