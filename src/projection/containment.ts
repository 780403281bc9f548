/**
 * The containment check every projection goes through: a path velo is
 * about to create, rename, replace or delete must lie inside the directory
 * the caller named (`within`: the project for npm, the directory that holds
 * the .venv or target/ for uv and cargo). "Inside" is judged where the path
 * really is: the existing part of its parent chain is resolved (realpath),
 * so a symlinked parent pointing elsewhere does not smuggle a write out.
 * The path itself is not followed: renaming or deleting a symlink touches
 * only the link.
 *
 * A path that fails the check is never touched: UNSAFE_PATH (exit 6).
 */
import { lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { errnoCode, VeloError } from '../errors.js';

/** Thrown before anything outside `within` would be touched. */
export class OutsideProjectError extends VeloError {
  readonly path: string;
  readonly within: string;
  constructor(path: string, within: string, real?: string) {
    super(
      'UNSAFE_PATH',
      `refusing to touch ${path}: it is not inside ${within}${real && real !== path ? ` (it resolves to ${real})` : ''}`,
      { hint: 'a symlink or a path in the input leads outside the project; nothing was changed there' },
    );
    this.name = 'OutsideProjectError';
    this.path = path;
    this.within = within;
  }
}

/**
 * realpath of the longest existing prefix of an absolute path, with the rest
 * appended as written. A dangling symlink in the chain is followed to where
 * it points (what mkdir through it would reach), not taken as a plain name.
 */
function realOfExisting(path: string): string {
  const rest: string[] = [];
  let p = path;
  for (let hops = 0; ; ) {
    try {
      const real = realpathSync(p);
      return rest.length === 0 ? real : join(real, ...[...rest].reverse());
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      if (lstatSync(p, { throwIfNoEntry: false })?.isSymbolicLink()) {
        if (++hops > 40) throw new VeloError('UNSAFE_PATH', `too many levels of symbolic links at ${p}`);
        p = resolve(dirname(p), readlinkSync(p));
        continue;
      }
      const parent = dirname(p);
      if (parent === p) return path;
      rest.push(basename(p));
      p = parent;
    }
  }
}

function isInside(path: string, root: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

/**
 * Prove that `path` lies strictly inside `within` (lexically, and by the
 * real location of its parent directory); returns the absolute path. Throws
 * OutsideProjectError otherwise.
 */
export function assertContained(path: string, within: string): string {
  const root = resolve(within);
  const abs = resolve(path);
  if (abs === root || !isInside(abs, root)) throw new OutsideProjectError(abs, root);
  const realRoot = realOfExisting(root);
  const real = join(realOfExisting(dirname(abs)), basename(abs));
  if (real === realRoot || !isInside(real, realRoot)) throw new OutsideProjectError(abs, root, real);
  return abs;
}

/** assertContained as a question: for paths velo may leave alone rather than refuse. */
export function isContained(path: string, within: string): boolean {
  try {
    assertContained(path, within);
    return true;
  } catch (err) {
    if (err instanceof OutsideProjectError) return false;
    throw err;
  }
}

/** A projection's destination, checked: every path the projection touches is checked against `within` again. */
export interface ProjectionTarget {
  readonly dest: string;
  readonly within: string;
}

export function projectionTarget(dest: string, within: string): ProjectionTarget {
  return { dest: assertContained(dest, within), within: resolve(within) };
}

/**
 * The directory a tool-chosen destination (a .venv, a cargo target dir, a
 * path the user typed) is checked against: the project when the destination
 * lies in it, else the directory the destination was put in.
 */
export function enclosingRoot(dest: string, project: string | undefined): string {
  const abs = resolve(dest);
  if (project !== undefined) {
    const root = resolve(project);
    if (abs !== root && isInside(abs, root)) return root;
  }
  return dirname(abs);
}
