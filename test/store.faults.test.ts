// The store survives its own faults (issue 19): a damaged or lost index.db
// is rebuilt from the ref files with nothing forgotten, a key whose tree is
// gone is a cache miss, gc refuses while it cannot know the roots, and verify
// tells a killed gc's garbage from damage. Real registry on loopback, real npm,
// the real velo binary.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statfsSync, statSync, truncateSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PreparedProject } from './support/npmProject.js';
import { useRegistryProjects } from './support/registryProjects.js';
import { asObject, describeDir } from './support/treeCompare.js';
import { velo, veloAsync } from './support/runVelo.js';
import { Store } from '../src/store/store.js';
import { ingestDir } from '../src/store/addFilesFromDir.js';
import { getKey, registerProject, setKey } from '../src/store/keys.js';
import { keyRefPath } from '../src/store/refs.js';
import { verifyStore } from '../src/store/verify.js';
import { DatabaseSync } from 'node:sqlite';
import { writeTransaction } from '../src/store/indexDb.js';
import { toVeloError } from '../src/errors.js';

const fx = useRegistryProjects('velo-faults-');
const tmp = (): string => fx.tmp();

afterEach(async () => {
  await fx.registry.setFailure(null);
});

const env = (p: PreparedProject, home: string): NodeJS.ProcessEnv => ({ ...p.env, VELO_HOME: home });
const nm = (p: PreparedProject): Record<string, unknown> => asObject(describeDir(join(p.dir, 'node_modules')));

/** A project installed once by velo into a store of its own. */
async function installed(): Promise<{ p: PreparedProject; home: string; tree: Record<string, unknown> }> {
  const p = await fx.project('basic');
  const home = tmp();
  const r = await veloAsync(['npm', 'ci'], env(p, home), p.dir);
  expect(r.code, r.stderr).toBe(0);
  return { p, home, tree: nm(p) };
}

interface StatusJson {
  projects: { path: string }[];
  keys?: number;
}

function status(home: string): StatusJson {
  const r = velo(['status', '--json'], { VELO_HOME: home });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as StatusJson;
}

function storeIsSound(home: string): void {
  const r = velo(['verify'], { VELO_HOME: home });
  expect(r.code, r.stdout + r.stderr).toBe(0);
  expect(r.stdout).toMatch(/all sound/);
}

/** Install again with the registry refusing every tarball: only the store can serve it. */
async function offlineReinstall(p: PreparedProject, home: string): Promise<{ code: number; stdout: string; stderr: string }> {
  await fx.registry.setFailure({ mode: 'status', status: 500, on: 'any' });
  rmSync(join(p.dir, 'node_modules'), { recursive: true, force: true });
  return veloAsync(['npm', 'ci'], env(p, home), p.dir);
}

const damages: [string, (index: string) => void][] = [
  ['truncated to 0 bytes', (index) => truncateSync(index, 0)],
  ['truncated to half', (index) => truncateSync(index, Math.floor(statSync(index).size / 2))],
  ['overwritten with garbage', (index) => writeFileSync(index, Buffer.alloc(statSync(index).size, 0x5a))],
  [
    'garbage after its first page',
    (index) => {
      const b = readFileSync(index);
      b.fill(0xa5, 4096);
      writeFileSync(index, b);
    },
  ],
  ['deleted', (index) => unlinkSync(index)],
];

describe('index.db damaged or lost', () => {
  for (const [what, damage] of damages) {
    it(`${what}: the next command rebuilds it from refs/ and nothing is forgotten`, async () => {
      const { p, home, tree } = await installed();
      const before = status(home);
      expect(before.projects.map((x) => x.path)).toEqual([join(p.dir, 'node_modules')]);
      damage(join(home, 'index.db'));
      for (const f of ['index.db-wal', 'index.db-shm']) rmSync(join(home, f), { force: true });
      // the project (a GC root) is still known
      const s = velo(['status', '--json'], { VELO_HOME: home });
      expect(s.code, s.stderr).toBe(0);
      expect((JSON.parse(s.stdout) as StatusJson).projects.map((x) => x.path)).toEqual([join(p.dir, 'node_modules')]);
      if (what !== 'deleted') expect(s.stderr).toMatch(/velo: the store index was (damaged|rebuilt from refs)/);
      // gc deletes nothing the project uses
      const gc = velo(['gc', '--json'], { VELO_HOME: home });
      expect(gc.code, gc.stderr).toBe(0);
      expect(JSON.parse(gc.stdout)).toMatchObject({ objectsDeleted: 0, treesDeleted: 0, keysDeleted: 0 });
      // every package key survived: an install with the registry down is served from the store
      const r = await offlineReinstall(p, home);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/0 fetched/);
      expect(nm(p)).toEqual(tree);
      storeIsSound(home);
    });
  }

  it('a garbage write-ahead log loses nothing the refs hold', async () => {
    const { p, home, tree } = await installed();
    writeFileSync(join(home, 'index.db-wal'), Buffer.alloc(64 * 1024, 0x33));
    const r = await offlineReinstall(p, home);
    expect(r.code, r.stderr).toBe(0);
    expect(nm(p)).toEqual(tree);
    expect(status(home).projects.map((x) => x.path)).toEqual([join(p.dir, 'node_modules')]);
    storeIsSound(home);
  });

  it('velo verify reports a malformed index and names the fix; --repair rebuilds it with nothing lost', async () => {
    const { p, home, tree } = await installed();
    const index = join(home, 'index.db');
    const b = readFileSync(index);
    b.fill(0xa5, 4096);
    writeFileSync(index, b);
    const v = velo(['verify'], { VELO_HOME: home });
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(/damaged-index .*velo verify --repair rebuilds it/);
    const repair = velo(['verify', '--repair'], { VELO_HOME: home });
    expect(repair.code, repair.stderr).toBe(0);
    expect(repair.stderr).toMatch(/repaired {2}damaged-index/);
    expect(readdirSync(join(home, 'quarantine')).some((n) => n.startsWith('index.db.'))).toBe(true);
    storeIsSound(home);
    const r = await offlineReinstall(p, home);
    expect(r.code, r.stderr).toBe(0);
    expect(nm(p)).toEqual(tree);
  });
});

describe('store format 1 (before refs/)', () => {
  /** Make the store look as a velo before refs wrote it. */
  function downgrade(home: string): void {
    rmSync(join(home, 'refs'), { recursive: true, force: true });
    const meta = JSON.parse(readFileSync(join(home, 'store.json'), 'utf8')) as { format: number };
    writeFileSync(join(home, 'store.json'), JSON.stringify({ ...meta, format: 1 }));
  }

  it('is upgraded on open: the refs of every key and project are written, then format 2', async () => {
    const { p, home, tree } = await installed();
    downgrade(home);
    const s = velo(['status'], { VELO_HOME: home });
    expect(s.code, s.stderr).toBe(0);
    expect(s.stderr).toMatch(/upgraded to format 2 \(\d+ ref file\(s\) written under refs\/\)/);
    expect((JSON.parse(readFileSync(join(home, 'store.json'), 'utf8')) as { format: number }).format).toBe(2);
    expect(readdirSync(join(home, 'refs', 'projects'))).toHaveLength(1);
    // now the index can go: the refs written by the upgrade bring everything back
    unlinkSync(join(home, 'index.db'));
    const r = await offlineReinstall(p, home);
    expect(r.code, r.stderr).toBe(0);
    expect(nm(p)).toEqual(tree);
  });

  it('with its index lost, gc refuses to run (the roots are unknown) until told the projects are registered again', async () => {
    const { p, home } = await installed();
    downgrade(home);
    truncateSync(join(home, 'index.db'), 0);
    const objects = () => readdirSync(join(home, 'objects'), { recursive: true }).length;
    const had = objects();
    const gc = velo(['gc'], { VELO_HOME: home });
    expect(gc.code).toBe(16);
    expect(gc.stderr).toMatch(/gc cannot tell which projects use this store/);
    expect(gc.stderr).toMatch(/velo gc --roots-registered/);
    expect(objects()).toBe(had);
    // the user installs the project again (it registers), then says so
    const r = await veloAsync(['npm', 'ci', '--force'], env(p, home), p.dir);
    expect(r.code, r.stderr).toBe(0);
    const gc2 = velo(['gc', '--roots-registered', '--json'], { VELO_HOME: home });
    expect(gc2.code, gc2.stderr).toBe(0);
    expect(JSON.parse(gc2.stdout)).toMatchObject({ objectsDeleted: 0 });
    expect(velo(['gc'], { VELO_HOME: home }).code).toBe(0);
    storeIsSound(home);
  });
});

describe('trees lost while their keys remain', () => {
  it('an install fetches them again, records them again, succeeds and says so once', async () => {
    const { p, home, tree } = await installed();
    rmSync(join(home, 'trees'), { recursive: true });
    rmSync(join(p.dir, 'node_modules'), { recursive: true });
    const r = await veloAsync(['npm', 'ci'], env(p, home), p.dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.match(/no longer in the store: fetching again/g)).toHaveLength(1);
    expect(nm(p)).toEqual(tree);
    storeIsSound(home);
    // recorded again: the next install is served by the store alone
    const again = await offlineReinstall(p, home);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/0 fetched/);
  });
});

describe('verify after a gc killed half-way', () => {
  it('unused keys and unreferenced trees left incomplete are garbage, not damage', async () => {
    const { p, home } = await installed();
    // the state a sweep killed half-way leaves: the project's directory is gone, some of
    // what it used is deleted, and its registration and keys are still in the index
    rmSync(p.dir, { recursive: true, force: true });
    const trees = join(home, 'trees');
    for (const prefix of readdirSync(trees).slice(0, 3)) rmSync(join(trees, prefix), { recursive: true });
    const objects = join(home, 'objects');
    for (const prefix of readdirSync(objects).slice(0, 5)) rmSync(join(objects, prefix), { recursive: true });
    const v = velo(['verify', '--json'], { VELO_HOME: home });
    const report = JSON.parse(v.stdout) as { problems: unknown[]; garbage: { trees: number; keys: number; projects: number } };
    expect(v.code, v.stdout).toBe(0);
    expect(report.problems).toEqual([]);
    expect(report.garbage.projects).toBe(1);
    expect(report.garbage.trees + report.garbage.keys).toBeGreaterThan(0);
    const gc = velo(['gc'], { VELO_HOME: home });
    expect(gc.code, gc.stderr).toBe(0);
    const after = JSON.parse(velo(['verify', '--json'], { VELO_HOME: home }).stdout) as { garbage: { trees: number; keys: number }; objects: number };
    expect(after.garbage).toEqual({ trees: 0, keys: 0, projects: 0 });
    expect(after.objects).toBe(0);
    expect(existsSync(join(home, 'refs', 'keys')) ? readdirSync(join(home, 'refs', 'keys'), { recursive: true }).filter((n) => String(n).length > 10) : []).toEqual([]);
  });
});

describe('a full disk', () => {
  it('at 0 bytes free, install, --force and status exit 11 with the hint; with space again all works and the store is sound', async () => {
    const p = await fx.project('basic');
    const mnt = join(tmp(), 'mnt');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt]);
    try {
      const home = join(mnt, 'store');
      const first = await veloAsync(['npm', 'ci'], env(p, home), p.dir);
      expect(first.code, first.stderr).toBe(0);
      const tree = nm(p);
      // fill the filesystem to its last byte
      const filler = join(mnt, 'filler');
      try {
        execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=4k'], { stdio: 'ignore' });
      } catch {
        /* dd stops on ENOSPC */
      }
      expect(statfsSync(mnt).bavail).toBe(0);
      const runs = [
        velo(['status'], { VELO_HOME: home }),
        await veloAsync(['npm', 'ci', '--force'], env(p, home), p.dir),
        await veloAsync(['npm', 'ci', '--force', '--method', 'copy'], env(p, home), p.dir),
      ];
      for (const r of runs) {
        expect(r.code, r.stderr).toBe(11);
        expect(r.stderr).toMatch(/the disk is full/);
        expect(r.stderr).toMatch(/hint: free some space on that disk, or run velo gc/);
      }
      expect(nm(p)).toEqual(tree);
      rmSync(filler);
      const again = await veloAsync(['npm', 'ci', '--force'], env(p, home), p.dir);
      expect(again.code, again.stderr).toBe(0);
      expect(nm(p)).toEqual(tree);
      storeIsSound(home);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});

describe('the index when the disk fills inside a transaction', () => {
  it('reports the full disk, not the failed rollback SQLite already did, and the index works once there is space', () => {
    const mnt = join(tmp(), 'mnt');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', mnt]);
    try {
      const db = new DatabaseSync(join(mnt, 'index.db'));
      db.exec('PRAGMA journal_mode=WAL; CREATE TABLE t(b BLOB)');
      const insert = db.prepare('INSERT INTO t VALUES (?)');
      let thrown: unknown;
      try {
        writeTransaction(db, () => {
          for (let i = 0; i < 1000; i++) insert.run(Buffer.alloc(8192, i));
        });
      } catch (err) {
        thrown = err;
      }
      expect((thrown as Error).message).toMatch(/disk is full/);
      expect(toVeloError(thrown)?.message).toMatch(/the disk is full/);
      expect(db.isTransaction).toBe(false);
      // nothing of the failed transaction stayed, and the next one commits
      writeTransaction(db, () => insert.run(Buffer.alloc(16, 1)));
      expect((db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n).toBe(1);
      db.close();
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});

describe('an object edited in place with its size and mtime put back', () => {
  /** Edit node_modules/velo-fx-chain-a/index.js's store object, keeping its size and mtime: the guard cannot see it. */
  function tamper(path: string): { good: string } {
    const st = statSync(path);
    const good = readFileSync(path, 'utf8');
    const bad = good.replace("'velo-fx-chain-a'", "'velo-fx-chain-X'");
    expect(bad.length).toBe(good.length);
    chmodSync(path, 0o644);
    writeFileSync(path, bad);
    chmodSync(path, st.mode & 0o7777);
    utimesSync(path, st.atime, st.mtime);
    return { good };
  }

  it('--force hashes what it lays out: the object is quarantined, fetched again, and the project gets the right bytes', async () => {
    const { p, home } = await installed();
    const file = join(p.dir, 'node_modules', 'velo-fx-chain-a', 'index.js');
    const { good } = tamper(file); // hardlinked: this edits the store object
    const r = await veloAsync(['npm', 'ci', '--force'], env(p, home), p.dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.match(/1 store object\(s\) missing or changed in place, quarantined/g)).toHaveLength(1);
    expect(readFileSync(file, 'utf8')).toBe(good);
    expect(readdirSync(join(home, 'quarantine')).length).toBeGreaterThan(0);
    storeIsSound(home);
  });

  it('--force --method copy never overwrites an intact copy with the tampered bytes', async () => {
    const p = await fx.project('basic');
    const home = tmp();
    const first = await veloAsync(['npm', 'ci', '--method', 'copy'], env(p, home), p.dir);
    expect(first.code, first.stderr).toBe(0);
    const file = join(p.dir, 'node_modules', 'velo-fx-chain-a', 'index.js');
    const good = readFileSync(file, 'utf8');
    // find the store object behind the copy and edit it in place
    const objects = readdirSync(join(home, 'objects'), { recursive: true })
      .map((n) => join(home, 'objects', String(n)))
      .filter((f) => statSync(f).isFile() && readFileSync(f, 'utf8') === good);
    expect(objects).toHaveLength(1);
    tamper(objects[0]!);
    const r = await veloAsync(['npm', 'ci', '--force', '--method', 'copy'], env(p, home), p.dir);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(good);
    expect(readFileSync(objects[0]!, 'utf8')).toBe(good); // fetched again into the store
    storeIsSound(home);
  });
});

describe('a mounted node_modules emptied by rm -rf', () => {
  it('velo npm ci --projection mount (and --force) repairs the view instead of reporting it mounted', async () => {
    const p = await fx.project('basic');
    const home = tmp();
    const nmDir = join(p.dir, 'node_modules');
    try {
      const first = await veloAsync(['npm', 'ci', '--projection', 'mount'], env(p, home), p.dir);
      expect(first.code, first.stderr).toBe(0);
      const tree = nm(p);
      for (const extra of [[], ['--force']]) {
        const rm = spawnSync('rm', ['-rf', nmDir], { encoding: 'utf8' });
        expect(rm.stderr).toMatch(/Device or resource busy/);
        expect(readdirSync(nmDir).filter((n) => n !== '.package-lock.json')).toEqual([]);
        const r = await veloAsync(['npm', 'ci', '--projection', 'mount', ...extra], env(p, home), p.dir);
        expect(r.code, r.stderr).toBe(0);
        expect(nm(p)).toEqual(tree);
      }
      const s = velo(['status'], { VELO_HOME: home });
      expect(s.stdout).toMatch(/Device or resource busy.*velo umount <dir>/);
    } finally {
      velo(['umount', nmDir], { VELO_HOME: home });
    }
  });
});

describe('the index and refs/ disagree', () => {
  it('verify names each side that lacks the other; --repair copies it across', async () => {
    const home = tmp();
    const src = join(tmp(), 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'a.js'), 'a\n');
    const store = Store.open(home);
    const tree = (await ingestDir(store, src)).tree;
    setKey(store, 'npm:only-in-index@1', tree, { kind: 'npm' });
    setKey(store, 'npm:only-in-refs@1', tree, { kind: 'npm' });
    registerProject(store, { path: join(home, '..'), ecosystem: 'tree', tree, keys: ['npm:only-in-index@1', 'npm:only-in-refs@1'] });
    unlinkSync(keyRefPath(home, 'npm:only-in-index@1'));
    store.index.prepare('DELETE FROM keys WHERE name = ?').run('npm:only-in-refs@1');
    const found = await verifyStore(store);
    expect(found.problems.map((p) => [p.kind, p.path])).toEqual([
      ['unindexed-ref', 'npm:only-in-refs@1'],
      ['missing-ref', 'npm:only-in-index@1'],
    ]);
    const repaired = await verifyStore(store, { repair: true });
    expect(repaired.problems.every((p) => p.repaired)).toBe(true);
    expect(existsSync(keyRefPath(home, 'npm:only-in-index@1'))).toBe(true);
    expect(getKey(store, 'npm:only-in-refs@1')).toBe(tree);
    expect((await verifyStore(store)).problems).toEqual([]);
    store.close();
  });
});
