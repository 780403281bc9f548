/**
 * velo gc [--dry-run] — delete what no registered project uses.
 */
import { collectGarbage } from '../src/store/gc.js';
import { dropSnapshots } from '../src/cargo/snapshots.js';
import { VeloError } from '../src/errors.js';
import { flag, parse } from './args.js';
import { openStore } from './storeContext.js';
import { formatBytes, json, out, type Io } from './io.js';

const USAGE = `Usage: velo gc [--dry-run] [--keep N] [--roots-registered] [--json]

Deletes the keys, trees and objects that no registered project references.
Projects whose directories no longer exist are unregistered first. gc never
runs while an install is running in another process (it exits with code 7
and says who holds the store), and installs wait while gc runs.

  --dry-run   report what would be deleted, delete nothing
  --keep N    keep only the N newest cargo target snapshots of each project
              (the others are forgotten, then swept like everything else)
  --roots-registered
              after an index rebuilt from a store that kept no project refs
              (format 1), gc refuses to run (exit 16) until every project
              using the store has been installed again; this says it has`;

export async function run(argv: string[], io: Io): Promise<number> {
  const p = parse(argv, { 'dry-run': { type: 'boolean' }, keep: { type: 'string' }, 'roots-registered': { type: 'boolean' }, json: { type: 'boolean' } }, USAGE);
  if (p.help) return out(io, USAGE), 0;
  const keepRaw = p.values.keep;
  const keep = typeof keepRaw === 'string' ? Number(keepRaw) : undefined;
  if (keep !== undefined && (!Number.isInteger(keep) || keep < 0)) throw new VeloError('USAGE', `--keep needs a whole number >= 0 (got ${String(keepRaw)})`);
  const store = openStore(io);
  try {
    const dryRun = flag(p, 'dry-run');
    const snapshots = keep === undefined ? undefined : dropSnapshots(store, keep, { dryRun });
    const r = collectGarbage(store, { dryRun, rootsRegistered: flag(p, 'roots-registered') });
    if (flag(p, 'json')) json(io, { ...r, snapshotsDropped: snapshots?.dropped ?? [] });
    else {
      if (snapshots && snapshots.dropped.length) out(io, `${dryRun ? 'would forget' : 'forgot'} ${snapshots.dropped.length} cargo target snapshot(s)`);
      const verb = r.dryRun ? 'would delete' : 'deleted';
      for (const d of r.projectsDropped) out(io, `${r.dryRun ? 'would unregister' : 'unregistered'} missing project ${d}`);
      out(
        io,
        `${verb} ${r.objectsDeleted} objects (${formatBytes(r.objectBytes)}), ${r.treesDeleted} trees, ${r.keysDeleted} keys; ${r.liveObjects} objects in use`,
      );
    }
    return 0;
  } finally {
    store.close();
  }
}
