/**
 * What the kernel has mounted, from /proc/self/mountinfo. Mount points are
 * listed in mount order, so of several mounts stacked on one directory the
 * last one listed is the one a path lookup sees.
 */
import { readFileSync } from 'node:fs';

export interface MountEntry {
  id: number;
  parent: number;
  mountPoint: string;
  /** per-mount options (ro, rw, relatime, …) */
  options: string;
  fsType: string;
  source: string;
  /** per-superblock options: for overlay, lowerdir=…,upperdir=…,workdir=… */
  superOptions: string;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const fields = line.split(' ');
    const dash = fields.indexOf('-', 6);
    if (dash < 0 || fields.length < dash + 4) continue;
    out.push({
      id: Number(fields[0]),
      parent: Number(fields[1]),
      mountPoint: unescape(fields[4]!),
      options: fields[5]!,
      fsType: fields[dash + 1]!,
      source: unescape(fields[dash + 2]!),
      superOptions: unescape(fields[dash + 3]!),
    });
  }
  return out;
}

export function readMountTable(): MountEntry[] {
  try {
    return parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8'));
  } catch {
    return [];
  }
}

/** The mounts on `dir`, bottom first (the last one is what a lookup sees). */
export function mountsAt(dir: string, table: MountEntry[] = readMountTable()): MountEntry[] {
  return table.filter((m) => m.mountPoint === dir);
}

export function topMountAt(dir: string, table: MountEntry[] = readMountTable()): MountEntry | undefined {
  const at = mountsAt(dir, table);
  return at[at.length - 1];
}

/** One option of a mount's superblock options (lowerdir, upperdir, …). */
export function superOption(entry: MountEntry, name: string): string | undefined {
  for (const part of entry.superOptions.split(',')) {
    if (part.startsWith(`${name}=`)) return part.slice(name.length + 1);
  }
  return undefined;
}

/** The FUSE view the addon serves shows up as fstype "fuse.velo". */
export const FUSE_FSTYPE = 'fuse.velo';

export function isVeloFuse(entry: MountEntry | undefined): boolean {
  return entry?.fsType === FUSE_FSTYPE;
}

/** An overlay whose lower layer is `lower`. */
export function isOverlayOn(entry: MountEntry | undefined, lower: string): boolean {
  return entry?.fsType === 'overlay' && superOption(entry, 'lowerdir') === lower;
}
