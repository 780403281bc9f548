/**
 * How a target dir is projected from the store, decided once here.
 *
 * - reflink where the filesystem clones (btrfs, xfs, APFS): copy-on-write,
 *   costs no space until cargo rewrites a file, and every file has its own
 *   mtime;
 * - copy everywhere else (ext4): safe, costs the bytes.
 * - never hardlink, even when asked (VELO_METHOD=hardlink): cargo rewrites
 *   files of target/ in place (fingerprints, dep-info, build-script output,
 *   OUT_DIR contents: measured, see docs/CARGO.md), which would write into
 *   the store; and a hardlink carries the object's fixed 1985 mtime, while
 *   cargo compares mtimes of outputs with their dependencies' outputs — a
 *   registry crate with a build script linked this way rebuilds, and so
 *   does everything above it (measured). The files cargo never rewrites
 *   in place (.rlib, .rmeta, .so and executables are renamed into place)
 *   are exactly the ones whose mtimes it compares, so no file is both safe
 *   and useful to hardlink.
 */
import type { LinkMethod } from '../config.js';
import { resolveMethod } from '../projection/linkMethod.js';
import type { Store } from '../store/store.js';
import { dirname } from 'node:path';

export type TargetMethod = 'reflink' | 'copy';

export function targetMethod(store: Store, configured: LinkMethod, targetDir: string): TargetMethod {
  if (configured === 'copy') return 'copy';
  if (configured === 'reflink') return 'reflink';
  // auto and hardlink: reflink when the probe says the filesystem clones, else copy
  return resolveMethod(store, 'auto', dirname(targetDir)) === 'reflink' ? 'reflink' : 'copy';
}
