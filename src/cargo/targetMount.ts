/**
 * Target dirs by mount: the tree made by mountTree.ts is mounted at the
 * target through the public API of src/mount/mount.ts — a FUSE view of
 * the tree whose writable layer (a kernel overlayfs as root, the mount
 * server's copy-up otherwise) takes every write cargo and rustc make, so no
 * store object is reachable for writing.
 * mountProjection() swaps a new mount for an earlier velo mount at the same
 * place atomically, and covers (then deletes) a directory that was there.
 *
 * Cargo needs a writable target: a read-only mount would be no use here, so
 * that case, like a machine without FUSE, is reported as
 * TargetMountUnavailable and the caller copies.
 *
 * isVeloMount() reads /proc/self/mountinfo itself and loads nothing else:
 * `velo cargo clean` calls it before deciding whether to unmount.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { VeloError } from '../errors.js';
import type { Store } from '../store/store.js';

/** The project registration a mounted target makes (its path is the target dir; the workspace root stays `cargo`). */
export const TARGET_MOUNT_ECOSYSTEM = 'cargo-target';

/** The mount projection cannot be used here; `reason` is one line for the user. */
export class TargetMountUnavailable extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

function unescapeMountInfo(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Is the top mount at dir an overlay velo made (source "velo")? */
export function isVeloMount(dir: string): boolean {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return false;
  }
  const want = resolve(dir);
  let top: { fsType: string; source: string } | undefined;
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-', 6);
    if (dash < 0 || fields.length < dash + 3) continue;
    if (unescapeMountInfo(fields[4]!) !== want) continue;
    top = { fsType: fields[dash + 1]!, source: unescapeMountInfo(fields[dash + 2]!) };
  }
  return top !== undefined && ((top.fsType === 'overlay' && top.source === 'velo') || top.fsType === 'fuse.velo');
}

export interface TargetMountResult {
  /** the overlay's upper layer: what cargo writes */
  upper: string;
  pid: number;
  replaced: 'nothing' | 'directory' | 'mount';
  ms: number;
}

/** Why a writable mount certainly cannot be made here (undefined: try; mountProjection says why not). */
function mountUnavailableReason(): string | undefined {
  if (process.platform !== 'linux') return `mounts need Linux (this is ${process.platform})`;
  return undefined;
}

/**
 * Mount `tree` at targetDir (replacing a velo mount or a directory there).
 * Throws TargetMountUnavailable when only a read-only mount, or none, can
 * be made; other failures are VeloErrors.
 */
export async function mountTarget(store: Store, tree: string, targetDir: string, options: { keys: string[]; within: string }): Promise<TargetMountResult> {
  const why = mountUnavailableReason();
  if (why) throw new TargetMountUnavailable(why);
  const { mountProjection, unmountProjection } = await import('../mount/mount.js');
  let m;
  try {
    m = await mountProjection(store, tree, targetDir, { within: options.within, ecosystem: TARGET_MOUNT_ECOSYSTEM, keys: options.keys, backgroundRemoval: true });
  } catch (err) {
    if (err instanceof VeloError && err.code === 'FUSE_UNAVAILABLE') throw new TargetMountUnavailable(err.message);
    throw err;
  }
  if (m.upper === undefined) {
    // a read-only view (never asked for here, but never used if it comes): no use to cargo
    await unmountProjection(targetDir, { store });
    throw new TargetMountUnavailable(m.readOnlyReason ?? 'the overlay could not be mounted');
  }
  return { upper: m.upper, pid: m.pid, replaced: m.replaced, ms: m.ms };
}

/** Unmount a velo mount at targetDir (leaves an empty directory); false when there was none. */
export async function unmountTarget(store: Store | undefined, targetDir: string): Promise<boolean> {
  const { unmountProjection } = await import('../mount/mount.js');
  try {
    await unmountProjection(targetDir, store ? { store } : {});
    return true;
  } catch (err) {
    if (err instanceof VeloError && err.code === 'NOT_FOUND') return false;
    throw err;
  }
}
