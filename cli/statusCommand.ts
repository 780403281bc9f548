/**
 * velo status — what the store holds and what it saves.
 */
import { storeStatus } from '../src/store/status.js';
import { summarizeSnapshots } from '../src/cargo/snapshots.js';
import { listMounts } from '../src/mount/mount.js';
import { flag, parse } from './args.js';
import { config } from './context.js';
import { openStore } from './storeContext.js';
import { formatBytes, json, out, type Io } from './io.js';

const USAGE = `Usage: velo status [--json]

Shows the store: objects and physical bytes, the logical bytes referenced by
registered projects, the dedup ratio and bytes saved, the projection
methods in use, and velo's mounts with what their writable (upper) layers
hold. Figures come from counters the store keeps; velo verify recomputes
them.`;

export async function run(argv: string[], io: Io): Promise<number> {
  const p = parse(argv, { json: { type: 'boolean' } }, USAGE);
  if (p.help) return out(io, USAGE), 0;
  const store = openStore(io);
  try {
    const s = storeStatus(store);
    const cargo = summarizeSnapshots(store);
    const cfg = config(io);
    const mounts = listMounts(store);
    if (flag(p, 'json')) {
      json(io, { ...s, cargoSnapshots: cargo, mounts, configuredMethod: cfg.method, configuredProjection: cfg.projection });
      return 0;
    }
    const lines = [
      `store        ${s.home} (${s.digest})`,
      `objects      ${s.objects} (${formatBytes(s.physicalBytes)} on disk)`,
      `trees        ${s.trees} (${formatBytes(s.treeBytes)}), ${s.keys} package/snapshot keys`,
      `projects     ${s.projects.length} registered, ${formatBytes(s.logicalBytes)} logical` +
        (s.missingProjects.length ? ` (${s.missingProjects.length} more whose directories are gone: velo gc unregisters them)` : ''),
      `dedup        ${s.dedupRatio.toFixed(2)}x, ${formatBytes(s.bytesSaved)} saved`,
      `cargo        ${cargo.snapshots} target snapshot(s) of ${cargo.projects} project(s): ${formatBytes(cargo.logicalBytes)} of targets in ${formatBytes(cargo.uniqueBytes)} of distinct contents` +
        (cargo.unreferenced ? ` (${cargo.unreferenced} more no existing project uses: velo gc frees them)` : ''),
      `projection   ${cfg.projection}, link method ${cfg.method}` +
        (s.probes.length ? ` (auto chose ${[...new Set(s.probes.map((x) => x.method))].join(', ')})` : ''),
    ];
    for (const pr of s.projects) {
      lines.push(`  ${pr.path} [${pr.ecosystem}] ${pr.files} files, ${formatBytes(pr.logicalBytes)}, ${pr.projection === 'mount' ? 'mount' : pr.method}`);
    }
    if (mounts.length > 0) {
      const stale = mounts.filter((m) => m.state === 'stale').length;
      lines.push(`mounts       ${mounts.length}${stale ? ` (${stale} stale: velo mounts repairs them)` : ''}`);
      for (const m of mounts) {
        const u = m.upperSummary;
        const upper = u ? `upper ${u.files} file(s) written (${formatBytes(u.bytes)}), ${u.deleted} deleted` : 'read-only';
        lines.push(`  ${m.dest} ${m.method}, ${m.state === 'mounted' ? `pid ${m.pid}` : 'stale'}: ${upper}${u?.paths.length ? ` — ${u.paths.slice(0, 3).join(', ')}${u.files + u.deleted > 3 ? ', …' : ''}` : ''}`);
      }
      lines.push(`  rm -rf of a mounted directory ends on "Device or resource busy" (EBUSY): velo umount <dir> removes a mount; the next install repairs an emptied one`);
    }
    out(io, lines.join('\n'));
    return 0;
  } finally {
    store.close();
  }
}
