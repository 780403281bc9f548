/**
 * The limits npm's tar meets when it extracts a package, which velo applies
 * to the same entries: node-tar's default maxDepth (deeper entries are
 * dropped with a warning), and the kernel's NAME_MAX and PATH_MAX (an entry
 * beyond them fails with ENAMETOOLONG, which npm warns about and skips).
 */
export const MAX_DEPTH = 1024;
export const NAME_MAX = 255;
/** counting the terminating NUL: a path of PATH_MAX bytes or more cannot be created */
export const PATH_MAX = 4096;

/** A path short enough for a message: its start and its end. */
export function shortPath(path: string): string {
  return JSON.stringify(path.length > 120 ? `${path.slice(0, 60)}…${path.slice(-40)}` : path);
}
