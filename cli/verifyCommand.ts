/**
 * velo verify [--repair] — re-hash the whole store.
 */
import { verifyStore } from '../src/store/verify.js';
import { flag, parse } from './args.js';
import { openStore } from './storeContext.js';
import { formatBytes, json, out, err, type Io } from './io.js';
import { withLease } from '../src/store/lock.js';
import { checkIndexIntegrity } from '../src/store/indexRecovery.js';

const USAGE = `Usage: velo verify [--repair] [--json]

Re-hashes every object and tree in the store, checks object modes and mtimes
(an object edited in place through a hardlink shows up here), finds trees
whose objects are missing, and recomputes the store's counters.

  --repair   rebuild a damaged index from the ref files under refs/ (the
             damaged one is kept in quarantine/), bring the index and refs/
             into agreement, quarantine damaged objects, fix drifted
             modes/mtimes, drop keys whose trees can no longer be
             materialized (the next install re-fetches those packages),
             remove dead processes' temp files

Unreferenced trees and keys found incomplete (what a gc killed half-way
leaves) are garbage, counted apart, not problems: the next gc removes them.

Exit code: 0 when the store is sound (or everything found was repaired), 1 otherwise.`;

export async function run(argv: string[], io: Io): Promise<number> {
  const p = parse(argv, { repair: { type: 'boolean' }, json: { type: 'boolean' } }, USAGE);
  if (p.help) return out(io, USAGE), 0;
  const store = openStore(io);
  try {
    const repair = flag(p, 'repair');
    // SQLite's own check first: a damaged index is moved aside and rebuilt from refs/ (repair), or reported
    const damagedIndex = checkIndexIntegrity(store, { repair });
    if (damagedIndex && !repair) {
      const detail = `${damagedIndex.reason}; velo verify --repair rebuilds it from refs/`;
      if (flag(p, 'json')) json(io, { problems: [{ kind: 'damaged-index', path: 'index.db', detail, repaired: false }] });
      else err(io, `PROBLEM  damaged-index  index.db: ${detail}`);
      return 1;
    }
    const report = await withLease(store, repair ? 'gc' : 'install', () => verifyStore(store, { repair }), { waitMs: 30_000 });
    if (damagedIndex) {
      report.problems.unshift({ kind: 'damaged-index', path: damagedIndex.aside, detail: `${damagedIndex.reason}; rebuilt from refs/`, repaired: true });
      report.repaired++;
    }
    const unrepaired = report.problems.filter((x) => !x.repaired).length;
    if (flag(p, 'json')) json(io, report);
    else {
      for (const x of report.problems) err(io, `${x.repaired ? 'repaired' : 'PROBLEM'}  ${x.kind}  ${x.path}: ${x.detail}`);
      out(
        io,
        `verified ${report.objects} objects (${formatBytes(report.objectBytes)}) and ${report.trees} trees: ` +
          (report.problems.length === 0 ? 'all sound' : `${report.problems.length} problem(s), ${report.repaired} repaired`) +
          (report.garbage.trees + report.garbage.keys + report.garbage.projects > 0
            ? `; garbage for the next velo gc (not damage): ${report.garbage.projects} project(s) whose directory is gone, ` +
              `${report.garbage.keys} unused key(s) and ${report.garbage.trees} unreferenced tree(s) left incomplete`
            : '') +
          (report.lazyObjects > 0 ? `; ${report.lazyObjects} file(s) of lazy mounts still in the remote (fetched on first open)` : ''),
      );
    }
    return unrepaired === 0 ? 0 : 1;
  } finally {
    store.close();
  }
}
