/**
 * velo cargo with the mount projection, against real cargo and a real FUSE
 * mount under a kernel overlay, offline: a target dir is the snapshot's tree
 * served read-only with a writable layer on top. A second clone restored by
 * mount finds every unit fresh; cargo's writes land in the writable layer
 * and never in the store; a build that changed the target is stored and
 * the target remounted on it; cargo clean works; three mounted clones cost
 * next to nothing beside the store; without FUSE the target is copied.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, existsSync, lstatSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { artifacts, cargo, cargoSandbox, listFiles, veloCargo, REPO_ROOT, type CargoSandbox } from '../fixtures/cargo/harness.js';
import { ALL_UNITS, expectSameDemoBinary, expectStoreObjectsIntact, rebuiltPackages, units, withStore } from './support/cargoChecks.js';

const dist = (p: string): string => join(REPO_ROOT, 'dist', p);
const { readTree } = (await import(dist('src/store/trees.js'))) as typeof import('../src/store/trees.js');
const mounts = (await import(dist('src/mount/mount.js'))) as typeof import('../src/mount/mount.js');

const MOUNT = ['--projection', 'mount'];

/** The top mount at dir, from the kernel's table: what `findmnt` shows. */
function mountedAt(dir: string): { fsType: string; source: string } | undefined {
  let top: { fsType: string; source: string } | undefined;
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const dash = f.indexOf('-', 6);
    if (dash > 0 && f[4] === dir) top = { fsType: f[dash + 1]!, source: f[dash + 2]! };
  }
  return top;
}

function mountOf(sb: CargoSandbox, dest: string): ReturnType<typeof mounts.listMounts>[number] {
  const m = withStore(sb, (s) => mounts.listMounts(s)).filter((x) => x.dest === dest && x.state === 'mounted');
  expect(m, `one velo mount at ${dest}`).toHaveLength(1);
  return m[0]!;
}

function state(clone: string): { snapshot: string; viewTree?: string; signature: string } {
  return JSON.parse(readFileSync(join(clone, 'target', '.velo', 'state.json'), 'utf8')) as { snapshot: string; viewTree?: string; signature: string };
}

/** `du -sb`: bytes a user sees used by these paths (a file linked into several is counted once). */
function du(paths: string[]): number {
  const out = execFileSync('du', ['-sbc', ...paths], { encoding: 'utf8' }).trim().split('\n');
  return Number(out.at(-1)!.split('\t')[0]);
}

describe('velo cargo --projection mount: target dirs as FUSE views with a writable overlay', () => {
  let sb: CargoSandbox;
  let a: string;
  let b: string;
  beforeAll(() => {
    sb = cargoSandbox('velo-cargo-mount-');
    a = sb.clone('a');
    const first = veloCargo(['build', ...MOUNT], a, sb.env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/Compiling velo-demo/);
    expect(first.stderr).toMatch(/velo: stored .*\/a\/target as snapshot/);
    // the directory cargo built is replaced by a mount of what was stored
    expect(first.stderr).toMatch(/velo: mounted .*\/a\/target on snapshot \w+ \(was a directory\)/);
  });
  afterAll(async () => {
    if (!sb) return;
    for (const m of withStore(sb, (s) => mounts.listMounts(s))) await mounts.unmountProjection(m.dest).catch(() => undefined);
    sb.remove();
  });

  test('the first clone’s target is now a velo overlay serving the snapshot with every stored mtime', () => {
    const target = join(a, 'target');
    expect(mountedAt(target)).toEqual({ fsType: 'overlay', source: 'velo' });
    const st = state(a);
    withStore(sb, (store) => {
      const entries = readTree(store, st.snapshot).entries.filter((e) => e.kind === 'file' && !e.path.startsWith('.velo/'));
      expect(entries.length).toBeGreaterThan(50);
      for (const e of entries) {
        const seen = lstatSync(join(target, e.path), { bigint: true });
        // uplifted files are symlinks to what cargo links them from: same bytes through the link
        const mtime = seen.isSymbolicLink() ? statSync(join(target, e.path), { bigint: true }).mtimeNs : seen.mtimeNs;
        expect({ path: e.path, mtime }).toEqual({ path: e.path, mtime: e.mtimeNs });
      }
    });
    // incremental/ is not in the shared snapshot but this clone keeps it across the remount
    expect(readdirSync(join(target, 'debug', 'incremental')).length).toBeGreaterThan(0);
  });

  test('a second clone restored by mount: cargo reports every unit fresh', () => {
    b = sb.clone('b');
    const r = veloCargo(['build', '--message-format=json', ...MOUNT], b, sb.env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/velo: restored .*\/b\/target from snapshot \w+ \(\d+ files, [\d.]+ \w+, mount\)/);
    expect(mountedAt(join(b, 'target'))).toEqual({ fsType: 'overlay', source: 'velo' });
    const list = artifacts(r.stdout);
    expect(units(list)).toEqual(ALL_UNITS);
    for (const unit of list) expect({ unit: `${unit.pkg}:${unit.kind}`, fresh: unit.fresh }).toEqual({ unit: `${unit.pkg}:${unit.kind}`, fresh: true });
    expect(r.stderr).not.toMatch(/Compiling|velo: stored/);
  });

  test('the binary is byte-identical to the first clone’s and runs', () => {
    expectSameDemoBinary(a, b, statSync);
  });

  test('the view serves the mounted tree’s mtimes, and a copy-up into the writable layer keeps them', () => {
    const target = join(b, 'target');
    const st = state(b);
    expect(st.viewTree).toMatch(/^[0-9a-f]{64}$/);
    const files = withStore(sb, (store) => readTree(store, st.viewTree!).entries.filter((e) => e.kind === 'file'));
    for (const e of files) expect({ path: e.path, mtime: lstatSync(join(target, e.path), { bigint: true }).mtimeNs }).toEqual({ path: e.path, mtime: e.mtimeNs });
    // chmod makes overlayfs copy the file up whole: its mtime must come along
    const rel = files.find((e) => e.path.startsWith('debug/deps/libgeom-') && e.path.endsWith('.rlib'))!;
    const upper = mountOf(sb, target).upper!;
    expect(existsSync(join(upper, rel.path))).toBe(false);
    chmodSync(join(target, rel.path), 0o644);
    expect(existsSync(join(upper, rel.path))).toBe(true);
    expect(lstatSync(join(target, rel.path), { bigint: true }).mtimeNs).toBe(rel.mtimeNs);
    expect(lstatSync(join(upper, rel.path), { bigint: true }).mtimeNs).toBe(rel.mtimeNs);
  });

  test('a build with every unit fresh writes next to nothing: cargo’s uplift links cost no copy-up', () => {
    const r = veloCargo(['build', '--message-format=json'], b, sb.env);
    expect(r.code, r.stderr).toBe(0);
    expect(artifacts(r.stdout).filter((x) => !x.fresh)).toEqual([]);
    const m = mountOf(sb, join(b, 'target'));
    // cargo writes dep-info for external tools (<profile>/*.d), its lock file, the one file the test chmod'ed
    const written = listFiles(m.upper!).filter((p) => !p.endsWith('.d') && p !== 'debug/.cargo-lock' && !p.startsWith('debug/deps/libgeom-'));
    expect(written).toEqual([]);
    expect(lstatSync(join(b, 'target', 'debug', 'velo-demo')).isSymbolicLink()).toBe(true);
  });

  test('editing a source rebuilds exactly what depends on it; the result is stored and the target remounted on it', () => {
    const before = mountOf(sb, join(b, 'target'));
    const file = join(b, 'crates', 'shapes', 'src', 'lib.rs');
    const source = readFileSync(file, 'utf8');
    appendFileSync(file, '\npub fn added_by_the_test() -> u8 { 7 }\n');
    const r = veloCargo(['build', '--message-format=json'], b, sb.env);
    expect(r.code, r.stderr).toBe(0);
    expect(rebuiltPackages(r.stdout)).toEqual(['render', 'shapes', 'velo-demo']);
    expect(r.stderr).toMatch(/velo: stored .*\/b\/target as snapshot (\w+)/);
    const snap = /velo: stored .* as snapshot (\w+)/.exec(r.stderr)![1]!;
    expect(r.stderr).toMatch(new RegExp(`velo: mounted .*/b/target on snapshot ${snap} \\(writable layer emptied\\)`));
    // a new mount took the old one's place: its writable layer is new and empty
    const after = mountOf(sb, join(b, 'target'));
    expect(after.id).not.toBe(before.id);
    expect(after.upperSummary).toMatchObject({ files: 0, deleted: 0 });
    expect(state(b).snapshot.startsWith(snap)).toBe(true);
    // what cargo built is what the mount shows, and it runs
    expect(spawnSync(join(b, 'target', 'debug', 'velo-demo'), { encoding: 'utf8' }).status).toBe(0);
    const again = veloCargo(['build', '--message-format=json'], b, sb.env);
    expect(again.code, again.stderr).toBe(0);
    expect(artifacts(again.stdout).filter((x) => !x.fresh)).toEqual([]);
    expect(again.stderr).not.toMatch(/velo: (stored|restored|mounted)/);
    // back to the fixture's sources: the newest snapshot is again one every clone can use as it is
    writeFileSync(file, source);
    const back = veloCargo(['build', '--message-format=json'], b, sb.env);
    expect(back.code, back.stderr).toBe(0);
    expect(back.stderr).toMatch(/velo: mounted /);
  });

  test('after cargo wrote into mounted targets every store object is intact', () => {
    expectStoreObjectsIntact(sb.home);
  });

  test('plain cargo clean empties a mounted target but cannot remove the mount point; velo cargo build restores it', () => {
    const target = join(b, 'target');
    const clean = cargo(['clean'], b, sb.env);
    // cargo deletes every file through the overlay, then fails on rmdir of the mount point
    expect(clean.code).toBe(101);
    expect(clean.stderr).toMatch(/failed to remove directory .*target[\s\S]*Device or resource busy/);
    expect(readdirSync(target)).toEqual([]);
    const r = veloCargo(['build', '--message-format=json', ...MOUNT], b, sb.env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/velo: .*\/b\/target is an empty velo mount: plain `cargo clean` or `rm -rf` empties a mounted target but cannot remove it .*`velo cargo clean` unmounts it first/);
    expect(r.stderr).toMatch(/velo: restored .*\/b\/target from snapshot .*mount\)/);
    expect(artifacts(r.stdout).filter((x) => !x.fresh)).toEqual([]);
    expect(mountOf(sb, target).upperSummary).toMatchObject({ deleted: 0 });
  });

  test('rm -rf on a mounted target ends on EBUSY; the next velo cargo build names velo cargo clean and restores it', () => {
    const target = join(b, 'target');
    const rm = spawnSync('rm', ['-rf', target], { encoding: 'utf8' });
    expect(rm.status).not.toBe(0);
    expect(rm.stderr).toMatch(/Device or resource busy/);
    expect(readdirSync(target)).toEqual([]);
    const r = veloCargo(['build', '--message-format=json', ...MOUNT], b, sb.env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/is an empty velo mount: .*`velo cargo clean` unmounts it first/);
    expect(r.stderr).toMatch(/velo: restored .*\/b\/target from snapshot .*mount\)/);
    expect(artifacts(r.stdout).filter((x) => !x.fresh)).toEqual([]);
  });

  test('velo cargo clean unmounts first, then cargo removes the target; the next build restores it', () => {
    const target = join(b, 'target');
    const r = veloCargo(['clean'], b, sb.env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/velo: unmounted .*\/b\/target/);
    expect(existsSync(target)).toBe(false);
    expect(mountedAt(target)).toBeUndefined();
    expect(withStore(sb, (s) => mounts.listMounts(s)).filter((m) => m.dest === target)).toEqual([]);
    const again = veloCargo(['build', '--message-format=json', ...MOUNT], b, sb.env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/velo: restored .*mount\)/);
    expect(artifacts(again.stdout).filter((x) => !x.fresh)).toEqual([]);
  });

  test('three clones mounted from one snapshot: their writable layers are a sliver of one target; velo status lists them', () => {
    const clones = ['c', 'd', 'e'].map((n) => sb.clone(n));
    // the projection from velo.json (c), the environment (d) and the flag (e)
    writeFileSync(join(clones[0]!, 'velo.json'), JSON.stringify({ projection: 'mount' }) + '\n');
    const runs = [
      veloCargo(['build', '--message-format=json'], clones[0]!, sb.env),
      veloCargo(['build', '--message-format=json'], clones[1]!, { ...sb.env, VELO_PROJECTION: 'mount' }),
      veloCargo(['build', '--message-format=json', ...MOUNT], clones[2]!, sb.env),
    ];
    for (const r of runs) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/velo: restored .*mount\)/);
      expect(artifacts(r.stdout).filter((x) => !x.fresh)).toEqual([]);
    }
    const uppers = clones.map((c) => mountOf(sb, join(c, 'target')).upper!);
    const oneTarget = Number(execFileSync('du', ['-sb', '--apparent-size', '-L', join(clones[0]!, 'target')], { encoding: 'utf8' }).split('\t')[0]);
    expect(oneTarget).toBeGreaterThan(15_000_000);
    const written = du(uppers);
    expect(written).toBeLessThan(oneTarget / 50);
    const status = spawnSync(process.execPath, [dist('cli/velo.js'), 'status'], { env: sb.env, encoding: 'utf8' });
    expect(status.status, status.stderr).toBe(0);
    for (const c of clones) expect(status.stdout).toMatch(new RegExp(`${join(c, 'target')} overlay, pid \\d+`));
  });

  test('velo gc keeps what mounted targets show, and the tree their state names', () => {
    const gc = spawnSync(process.execPath, [dist('cli/velo.js'), 'gc'], { env: sb.env, encoding: 'utf8' });
    expect(gc.status, gc.stderr).toBe(0);
    for (const name of ['b', 'c', 'e']) {
      const clone = join(sb.root, name);
      const viewTree = state(clone).viewTree!;
      expect(existsSync(join(sb.home, 'trees', viewTree.slice(0, 2), viewTree.slice(2)))).toBe(true);
      expect(execFileSync(join(clone, 'target', 'debug', 'velo-demo'), { encoding: 'utf8' })).toContain('Triangle perimeter 24');
    }
    const r = veloCargo(['build', '--message-format=json'], b, sb.env);
    expect(r.code, r.stderr).toBe(0);
    expect(artifacts(r.stdout).filter((x) => !x.fresh)).toEqual([]);
  });

  test('with the link projection, a mounted target that needs a restore is unmounted and copied', () => {
    const d = join(sb.root, 'd');
    const target = join(d, 'target');
    expect(cargo(['clean'], d, sb.env).code).toBe(101); // emptied through the overlay, as above
    const r = veloCargo(['build', '--message-format=json'], d, sb.env);
    expect(r.code, r.stderr).toBe(0);
    // what the switch costs is said before the copy is made
    const cost = /velo: .*\/d\/target is mounted; the link projection replaces the mount with a copy of the snapshot: (\d+) files, ([\d.]+ [KMG]?B) on disk/.exec(r.stderr);
    expect(cost, r.stderr).not.toBeNull();
    expect(r.stderr.indexOf(cost![0])).toBeLessThan(r.stderr.indexOf('velo: restored'));
    expect(r.stderr).toMatch(/velo: restored .*\/d\/target from snapshot .*copy\)/);
    expect(mountedAt(target)).toBeUndefined();
    expect(execFileSync(join(target, 'debug', 'velo-demo'), { encoding: 'utf8' })).toContain('Triangle perimeter 24');
    expect(artifacts(r.stdout).filter((x) => !x.fresh)).toEqual([]);
    expect(withStore(sb, (s) => mounts.listMounts(s)).filter((m) => m.dest === target)).toEqual([]);
  });

  test('where FUSE is unavailable the target is copied, and velo says why in one line', () => {
    const f = sb.clone('f');
    const env = { ...sb.env, VELO_NATIVE_ADDON: join(sb.root, 'absent', 'velo_native.node') };
    const r = veloCargo(['build', '--message-format=json', ...MOUNT], f, env);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('velo: projection mount:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/FUSE is unavailable: the native addon is not available.*: the target was copied instead/);
    expect(r.stderr).toMatch(/velo: restored .*\/f\/target from snapshot .*copy\)/);
    expect(mountedAt(join(f, 'target'))).toBeUndefined();
    expect(artifacts(r.stdout).filter((x) => !x.fresh)).toEqual([]);
  });
});
