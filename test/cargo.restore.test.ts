/**
 * velo cargo against real cargo, offline: a first clone builds and stores
 * its target dir; a second clone (another path, newer mtimes) restores it
 * and cargo finds everything fresh; edits rebuild only their dependents;
 * cargo writing into the restored target never reaches the store.
 */
import { execFileSync } from 'node:child_process';
import { lstatSync, readFileSync, rmSync, writeFileSync, appendFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { artifacts, cargoSandbox, listFiles, veloCargo, REPO_ROOT, type CargoSandbox } from '../fixtures/cargo/harness.js';
import { ALL_UNITS, expectSameDemoBinary, expectStoreObjectsIntact, rebuiltPackages, units, withStore } from './support/cargoChecks.js';

const dist = (p: string): string => join(REPO_ROOT, 'dist', p);
const { Store } = (await import(dist('src/store/store.js'))) as typeof import('../src/store/store.js');
const { listSnapshots } = (await import(dist('src/cargo/snapshots.js'))) as typeof import('../src/cargo/snapshots.js');
const { readTree } = (await import(dist('src/store/trees.js'))) as typeof import('../src/store/trees.js');

function snapshots(sb: CargoSandbox): ReturnType<typeof listSnapshots> {
  return withStore(sb, listSnapshots);
}

describe('velo cargo: a second clone restores the first one’s target dir', () => {
  let sb: CargoSandbox;
  let a: string;
  let b: string;
  beforeAll(() => {
    sb = cargoSandbox();
    a = sb.clone('a');
    const first = veloCargo(['build'], a, sb.env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/Compiling velo-demo/);
    expect(first.stderr).toMatch(/velo: stored .*target as snapshot/);
  });
  afterAll(() => sb.remove());

  test('the first build is stored as one snapshot and the target is marked as velo’s', () => {
    const snaps = snapshots(sb);
    expect(snaps).toHaveLength(1);
    expect(snaps[0]!.projects).toEqual([a]);
    const state = JSON.parse(readFileSync(join(a, 'target', '.velo', 'state.json'), 'utf8')) as { snapshot: string; project: string };
    expect(state.snapshot).toBe(snaps[0]!.tree);
    expect(state.project).toBe(a);
    // incremental/ and velo's own state stay out of the snapshot; the freshness manifest is in it
    const store = Store.open(sb.home);
    try {
      const paths = readTree(store, snaps[0]!.tree).entries.map((e) => e.path);
      expect(paths.some((p) => p.startsWith('debug/incremental'))).toBe(false);
      expect(paths).not.toContain('.velo/state.json');
      expect(paths).toContain('.velo/freshness.json');
      expect(paths).toContain('debug/velo-demo');
    } finally {
      store.close();
    }
  });

  test('in a second clone cargo reports every unit fresh, package by package', () => {
    b = sb.clone('b');
    const r = veloCargo(['build', '--message-format=json'], b, sb.env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/velo: restored .*\/b\/target from snapshot/);
    const list = artifacts(r.stdout);
    expect(units(list)).toEqual(ALL_UNITS);
    for (const unit of list) expect({ unit: `${unit.pkg}:${unit.kind}`, fresh: unit.fresh }).toEqual({ unit: `${unit.pkg}:${unit.kind}`, fresh: true });
    expect(r.stderr).not.toMatch(/Compiling/);
  });

  test('the restored binary is byte-identical to the first clone’s and runs', () => {
    expectSameDemoBinary(a, b, lstatSync);
  });

  test('a clone whose sources differ rebuilds what they feed, even when its files are older than the snapshot', () => {
    const x = sb.clone('x');
    const file = join(x, 'crates', 'geom', 'src', 'lib.rs');
    writeFileSync(file, readFileSync(file, 'utf8').replace('mathx::isqrt(dx * dx + dy * dy)', 'mathx::isqrt(dx * dx + dy * dy) + 1'));
    // older than anything in the snapshot: by mtimes alone cargo would take the restored geom as fresh
    utimesSync(file, new Date('2001-01-01'), new Date('2001-01-01'));
    const r = veloCargo(['build', '--message-format=json'], x, sb.env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/velo: restored .*; 1 unit\(s\) changed since and will rebuild/);
    const list = artifacts(r.stdout);
    expect(list.filter((u) => !u.fresh).map((u) => u.pkg).sort()).toEqual(['geom', 'render', 'shapes', 'velo-demo']);
    expect(execFileSync(join(x, 'target', 'debug', 'velo-demo'), { encoding: 'utf8' })).toContain('Segment Of Length    6');
  });

  test('no file of the restored target is a hardlink to a store object', () => {
    const storeInodes = new Set(listFiles(join(sb.home, 'objects')).map((f) => lstatSync(join(sb.home, 'objects', f)).ino));
    const shared = listFiles(join(b, 'target')).filter((f) => storeInodes.has(lstatSync(join(b, 'target', f)).ino));
    expect(shared).toEqual([]);
  });

  test('editing a source file rebuilds exactly what depends on it', () => {
    appendFileSync(join(b, 'crates', 'shapes', 'src', 'lib.rs'), '\npub fn added_by_the_test() -> u8 { 7 }\n');
    const r = veloCargo(['build', '--message-format=json'], b, sb.env);
    expect(r.code, r.stderr).toBe(0);
    expect(rebuiltPackages(r.stdout)).toEqual(['render', 'shapes', 'velo-demo']);
    expect(snapshots(sb).length).toBeGreaterThanOrEqual(2);
  });

  test('cargo rewriting files of the restored target left every store object intact', () => {
    expectStoreObjectsIntact(sb.home);
  });

  test('a failing cargo stores nothing and returns cargo’s exit code', () => {
    const before = snapshots(sb).map((s) => s.name);
    const file = join(b, 'crates', 'geom', 'src', 'lib.rs');
    const source = readFileSync(file, 'utf8');
    writeFileSync(file, source + '\nfn broken( {\n');
    try {
      const r = veloCargo(['build'], b, sb.env);
      expect(r.code).toBe(101);
      expect(r.stderr).toMatch(/could not compile `geom`/);
      expect(r.stderr).not.toMatch(/velo: stored/);
      expect(snapshots(sb).map((s) => s.name)).toEqual(before);
    } finally {
      writeFileSync(file, source);
    }
    const fixed = veloCargo(['build'], b, sb.env);
    expect(fixed.code, fixed.stderr).toBe(0);
  });

  test('run and test go through with their own output and exit codes', () => {
    const run = veloCargo(['run', '-q', '-p', 'velo-demo'], b, sb.env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('Triangle perimeter 24');
    const t = veloCargo(['test', '-q', '-p', 'velo-demo'], b, sb.env);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/test result: ok\. 1 passed/);
  });

  test('the same clone with target/ deleted gets its own snapshot back with the stored mtimes, all fresh', () => {
    // b stored newer snapshots under the same key, from edited sources; a's own is the one to restore
    const own = snapshots(sb).filter((s) => s.projects.includes(a));
    expect(own).toHaveLength(1);
    const last = own[0]!;
    rmSync(join(a, 'target'), { recursive: true, force: true });
    const r = veloCargo(['build', '--message-format=json'], a, sb.env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`velo: restored .* from snapshot ${last.tree.slice(0, 12)}`));
    expect(artifacts(r.stdout).filter((x) => !x.fresh)).toEqual([]);
    const store = Store.open(sb.home);
    try {
      for (const e of readTree(store, last.tree).entries) {
        if (e.kind !== 'file' || e.path.startsWith('.velo/')) continue;
        const actual = lstatSync(join(a, 'target', e.path), { bigint: true }).mtimeNs;
        // times are set through a double (seconds): equal to within a microsecond
        const diff = actual > e.mtimeNs ? actual - e.mtimeNs : e.mtimeNs - actual;
        expect({ path: e.path, close: diff <= 1000n }).toEqual({ path: e.path, close: true });
      }
    } finally {
      store.close();
    }
  });
});
