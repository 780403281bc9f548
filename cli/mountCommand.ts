/**
 * velo mount | umount | mounts — the mount projection by hand.
 */
import { resolve } from 'node:path';
import { enclosingRoot } from '../src/projection/containment.js';
import { VeloError } from '../src/errors.js';
import { listMounts, mountProjection, repairStaleMounts, unmountAll, unmountProjection, type RepairReport, type MountStatus, type UnmountResult } from '../src/mount/mount.js';
import { resolveMountSource } from '../src/mount/mountSource.js';
import { flag, need, parse, str } from './args.js';
import { openStore } from './storeContext.js';
import { err, formatBytes, formatMs, json, out, type Io } from './io.js';

const MOUNT_USAGE = `Usage: velo mount <tree|project-dir> <dir> [--read-only] [--upper-base DIR] [--json]

Mounts a store tree at <dir> without linking a file: a read-only FUSE view
of the tree under a writable overlay (writes land in an upper directory
under $VELO_HOME/mounts, never in the store; without root, or where
overlayfs is refused, the FUSE view is writable itself and its server
copies writes up into that directory). <tree> is a tree digest; a
directory means the tree velo last installed there (a project's
node_modules, .venv, …). What was at <dir> is replaced: a directory is
covered and removed, an earlier velo mount is unmounted. The mount is
served by a small background process and outlives this command; velo
umount ends it.

  --read-only        no writable layer: writes fail with EROFS
  --upper-base DIR   keep the writable layer in DIR/<id>/ instead
  --json             print {dest, tree, pid, upper, method, …}

Exit 15 when FUSE is unavailable (no /dev/fuse, addon not built).`;

const UMOUNT_USAGE = `Usage: velo umount <dir> | --all [--json]

Unmounts what velo mounted at <dir> (or every velo mount with --all): the
server process stops, the overlay and the FUSE view are detached, and the
writable layer (whatever was written through the mount) is deleted. <dir>
is left as an empty directory.`;

const MOUNTS_USAGE = `Usage: velo mounts [--json]

Lists velo's mounts: where, which tree, served by which process, and what
the writable layer holds. A mount whose server died ("Transport endpoint is
not connected") is repaired first: detached and mounted again from its tree
over the same writable layer.`;

function describeRepairs(io: Io, repaired: RepairReport[]): void {
  for (const r of repaired) {
    const what = r.action === 'remounted' ? `remounted (server pid ${r.pid})` : r.action === 'dropped' ? `dropped: ${r.error}` : `could not be remounted: ${r.error}`;
    err(io, `velo: repaired ${r.dest}: ${r.reason}; ${what}`);
  }
}

export async function runMount(argv: string[], io: Io): Promise<number> {
  const p = parse(argv, { 'read-only': { type: 'boolean' }, 'upper-base': { type: 'string' }, json: { type: 'boolean' } }, MOUNT_USAGE);
  if (p.help) return out(io, MOUNT_USAGE), 0;
  const [source, dir] = need(p, 2, MOUNT_USAGE);
  const store = openStore(io);
  try {
    const { tree, project } = resolveMountSource(store, source!, io.cwd);
    const upperBase = str(p, 'upper-base');
    const dest = resolve(io.cwd, dir!);
    const r = await mountProjection(store, tree, dest, {
      within: enclosingRoot(dest, undefined),
      ...(flag(p, 'read-only') ? { overlay: false } : {}),
      ...(upperBase ? { upperBase: resolve(io.cwd, upperBase) } : {}),
      backgroundRemoval: true,
    });
    if (flag(p, 'json')) {
      json(io, { ...r, from: project?.path, ms: Math.round(r.ms) });
      return 0;
    }
    describeRepairs(io, r.repaired);
    const from = project ? ` (installed at ${project.path})` : '';
    if (r.reused) out(io, `${r.dest}: tree ${r.tree.slice(0, 12)}${from} is already mounted (server pid ${r.pid})`);
    else {
      out(io, `mounted tree ${r.tree.slice(0, 12)}${from} at ${r.dest}: ${r.files} files, ${formatBytes(r.logicalBytes)}, in ${formatMs(r.ms)} (server pid ${r.pid})`);
    }
    if (r.upper !== undefined) out(io, `  writable: writes go to ${r.upper}${r.method === 'fuse-rw' ? ' (copied up by the mount server)' : ''}`);
    else out(io, `  read-only: ${r.readOnlyReason}`);
    return 0;
  } finally {
    store.close();
  }
}

export async function runUmount(argv: string[], io: Io): Promise<number> {
  const p = parse(argv, { all: { type: 'boolean' }, json: { type: 'boolean' } }, UMOUNT_USAGE);
  if (p.help) return out(io, UMOUNT_USAGE), 0;
  const all = flag(p, 'all');
  if (all === (p.positionals.length === 1) || p.positionals.length > 1) {
    throw new VeloError('USAGE', `give one directory or --all\n\n${UMOUNT_USAGE}`);
  }
  const store = openStore(io);
  try {
    const done: UnmountResult[] = all ? await unmountAll(store) : [await unmountProjection(resolve(io.cwd, p.positionals[0]!), { store })];
    if (flag(p, 'json')) json(io, done);
    else if (done.length === 0) out(io, 'nothing is mounted');
    else for (const u of done) out(io, `unmounted ${u.dest}${u.pid ? ` (server pid ${u.pid} stopped)` : ''}`);
    return 0;
  } finally {
    store.close();
  }
}

function describeMount(m: MountStatus): string[] {
  const lines = [
    `${m.dest}`,
    `  tree ${m.tree.slice(0, 12)} (${m.files} files, ${formatBytes(m.logicalBytes)}), ${m.method}, ${m.state === 'mounted' ? `served by pid ${m.pid}` : `STALE: ${m.reason}`}`,
  ];
  const u = m.upperSummary;
  if (u) {
    lines.push(
      `  upper ${m.upper}: ${u.files} file(s) written (${formatBytes(u.bytes)}), ${u.deleted} deleted` +
        (u.paths.length ? `: ${u.paths.slice(0, 5).join(', ')}${u.files + u.deleted > 5 ? ', …' : ''}` : ''),
    );
  }
  return lines;
}

export async function runMounts(argv: string[], io: Io): Promise<number> {
  const p = parse(argv, { json: { type: 'boolean' } }, MOUNTS_USAGE);
  if (p.help) return out(io, MOUNTS_USAGE), 0;
  const store = openStore(io);
  try {
    const repaired = await repairStaleMounts(store);
    const mounts = listMounts(store);
    if (flag(p, 'json')) {
      json(io, { mounts, repaired });
      return 0;
    }
    describeRepairs(io, repaired);
    if (mounts.length === 0) out(io, 'no mounts');
    else out(io, mounts.flatMap(describeMount).join('\n'));
    return repaired.some((r) => r.action === 'failed') ? 1 : 0;
  } finally {
    store.close();
  }
}
