/**
 * velo gc [--dry-run] — delete what no registered project uses.
 */
import { collectGarbage } from '../src/store/gc.js';
import { flag, parse } from './args.js';
import { openStore } from './context.js';
import { formatBytes, json, out, type Io } from './io.js';

const USAGE = `Usage: velo gc [--dry-run] [--json]

Deletes the keys, trees and objects that no registered project references.
Projects whose directories no longer exist are unregistered first. gc never
runs while an install is running in another process (it exits with code 7
and says who holds the store), and installs wait while gc runs.

  --dry-run   report what would be deleted, delete nothing`;

export async function run(argv: string[], io: Io): Promise<number> {
  const p = parse(argv, { 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } }, USAGE);
  if (p.help) return out(io, USAGE), 0;
  const store = openStore(io);
  try {
    const r = collectGarbage(store, { dryRun: flag(p, 'dry-run') });
    if (flag(p, 'json')) json(io, r);
    else {
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
