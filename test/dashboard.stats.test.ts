// The figures behind the dashboard (src/store/projectStats.ts and
// src/ui/dashboardModel.ts): grouping rows into projects, unique/shared
// bytes and their cache, and that the first frame's figures come from the
// index alone — a store whose counters say a million objects opens as fast
// as an empty one, because objects/ is never walked.
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../src/store/store.js';
import { setCounters } from '../src/store/counters.js';
import { writeTransaction } from '../src/store/indexDb.js';
import { registerProject, listProjects, type ProjectRecord } from '../src/store/keys.js';
import { putTree } from '../src/store/trees.js';
import { computeSharingStats, groupProjects, readSharingCache, sharingFingerprint } from '../src/store/projectStats.js';
import { loadIndexDetails, loadOverview } from '../src/ui/dashboardModel.js';
import { dashboardLines, initialViewState } from '../src/ui/dashboardView.js';
import { makeDashboardStore, type DashboardStore } from './dashboard.store.js';
import { tempDirs } from './support/tmp.js';

const tmp = tempDirs('velo-dash-stats-');

function row(path: string, ecosystem: string, over: Partial<ProjectRecord> = {}): ProjectRecord {
  return { path, ecosystem, tree: 'f'.repeat(64), method: 'hardlink', projection: 'link', logicalBytes: 100, files: 1, packages: 3, updated: 1_000_000, ...over };
}

describe('grouping index rows into projects', () => {
  it('puts an npm install\'s workspace node_modules, a uv .venv and cargo under the project directory velo init registered', () => {
    const groups = groupProjects(
      [
        row('/p/app', 'init', { packages: 0, logicalBytes: 0 }),
        row('/p/app/node_modules', 'npm', { packages: 10 }),
        row('/p/app/packages/b/node_modules', 'npm', { packages: 10, updated: 1_000_050 }),
        row('/p/app/.venv', 'uv', { packages: 4 }),
        row('/p/app', 'cargo', { packages: 0 }),
      ],
      () => true,
    );
    expect(groups).toHaveLength(1);
    expect(groups[0]).toMatchObject({ root: '/p/app', ecosystems: ['cargo', 'npm', 'uv'], initialized: true, packages: 14, logicalBytes: 400 });
  });

  it('without velo init: a workspace install groups with its root; a nested project installed on its own stands alone', () => {
    const groups = groupProjects(
      [
        row('/w/node_modules', 'npm', { packages: 7, updated: 5_000 }),
        row('/w/packages/a/node_modules', 'npm', { packages: 7, updated: 5_010 }),
        row('/w/examples/demo/node_modules', 'npm', { packages: 2, updated: 90_000 }),
      ],
      () => true,
    );
    expect(groups.map((g) => [g.root, g.rows.length, g.packages])).toEqual([
      ['/w', 2, 7],
      ['/w/examples/demo', 1, 2],
    ]);
  });
});

describe('unique and shared bytes', () => {
  let fx: DashboardStore;
  beforeAll(async () => {
    fx = await makeDashboardStore(tmp());
  });

  it('are exact, cached under the rows\' fingerprint, and recomputed when a project changes', async () => {
    const store = Store.open(fx.home);
    try {
      const rows = listProjects(store);
      const fp = sharingFingerprint(rows);
      expect(readSharingCache(store, fp)).toBeUndefined();
      const stats = await computeSharingStats(store);
      expect(stats.projects[fx.projects.one]).toEqual({ uniqueBytes: 0, sharedBytes: fx.sizes.a + fx.sizes.b, objects: 4 });
      expect(stats.projects[fx.projects.two]).toEqual({ uniqueBytes: fx.sizes.c, sharedBytes: fx.sizes.a + fx.sizes.b, objects: 6 });
      expect(stats.projects[fx.projects.three]).toEqual({ uniqueBytes: fx.sizes.three, sharedBytes: 0, objects: 1 });
      expect(stats.live.objects).toBe(7);
      expect(stats.live.objectBytes).toBe(fx.sizes.a + fx.sizes.b + fx.sizes.c + fx.sizes.three);
      expect(readSharingCache(store, fp)).toEqual(stats);
      // a project re-registered (an install): the old stats no longer apply
      registerProject(store, { path: fx.projects.three, ecosystem: 'tree', tree: putTree(store, []), method: 'copy' });
      const fp2 = sharingFingerprint(listProjects(store));
      expect(fp2).not.toBe(fp);
      expect(readSharingCache(store, fp2)).toBeUndefined();
      const again = await computeSharingStats(store);
      expect(again.projects[fx.projects.three]).toEqual({ uniqueBytes: 0, sharedBytes: 0, objects: 0 });
    } finally {
      store.close();
    }
  });
});

describe('the first frame reads the index, never objects/', () => {
  it('opens a store whose counters say 1,000,000 objects, with 300 projects and 300,000 project keys, in milliseconds', () => {
    const home = join(tmp(), 'big');
    const store = Store.open(home);
    try {
      const tree = putTree(store, []);
      writeTransaction(store.index, () => {
        setCounters(store, { objects: 1_000_000, object_bytes: 48_000_000_000, trees: 120_000, tree_bytes: 900_000_000 });
        const key = store.index.prepare('INSERT INTO keys(name, tree, kind, logical_bytes, files, created, used) VALUES(?, ?, ?, ?, ?, ?, ?)');
        for (let k = 0; k < 100_000; k++) key.run(`npm:sha512-${k}`, tree, 'npm', 40_000, 12, 1, 1);
        const proj = store.index.prepare(
          'INSERT INTO projects(path, ecosystem, tree, method, projection, logical_bytes, files, packages, updated) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)',
        );
        const pk = store.index.prepare('INSERT INTO project_keys(path, ecosystem, key) VALUES(?, ?, ?)');
        for (let p = 0; p < 300; p++) {
          const path = join(home, 'projects', `p${p}`, 'node_modules');
          proj.run(path, 'npm', tree, 'hardlink', 'link', 40_000_000, 12_000, 1000, Date.now() - p * 60_000);
          for (let k = 0; k < 1000; k++) pk.run(path, 'npm', `npm:sha512-${(p * 37 + k) % 100_000}`);
        }
      });
      mkdirSync(join(home, 'projects'), { recursive: true });
      writeFileSync(join(home, 'projects', 'README'), 'no project directories: every row is a directory that is gone\n');
    } finally {
      store.close();
    }
    expect(readdirSync(join(home, 'objects'))).toEqual([]); // the counters are all there is

    const t0 = performance.now();
    const s = Store.open(home);
    try {
      const o = loadOverview(s);
      const lines = dashboardLines(initialViewState(home, o, { columns: 80, rows: 24 }));
      const ms = performance.now() - t0;
      expect(lines[1]!.text).toContain('objects 1,000,000 · disk 48.0 GB');
      expect(o.projects).toHaveLength(300);
      expect(lines.length).toBe(23);
      // generous for a loaded 2-core CI machine; ~20 ms when idle
      expect(ms).toBeLessThan(250);
      const t1 = performance.now();
      const d = loadIndexDetails(s, o);
      const detailsMs = performance.now() - t1;
      expect(d.mostShared).toHaveLength(10);
      expect(d.ecosystems[0]).toMatchObject({ ecosystem: 'npm', projects: 300, keys: 100_000 });
      process.stdout.write(`first frame figures: ${ms.toFixed(1)} ms; ecosystems + most shared: ${detailsMs.toFixed(1)} ms\n`);
    } finally {
      s.close();
    }
  });
});
