// A mount's life: replacing what is at the destination, outliving the
// command that made it, unmounting with files open, a killed server repaired
// by the next velo command, and the velo mount / umount / mounts commands.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, statSync, writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestDir } from '../src/store/addFilesFromDir.js';
import { registerProject } from '../src/store/keys.js';
import { Store } from '../src/store/store.js';
import { readTree } from '../src/store/trees.js';
import { materialize } from '../src/projection/materialize.js';
import { listMounts, mountProjection, repairStaleMounts, unmountProjection } from '../src/mount/mount.js';
import { readMountTable } from '../src/mount/mountTable.js';
import { velo } from './support/runVelo.js';
import { isAlive, openMountSandbox, removeMountSandbox } from './support/mountSandbox.js';

let base: string;
let store: Store;
let treeA: string;
let treeB: string;
let env: NodeJS.ProcessEnv;

function makeFixture(root: string, version: string): void {
  const w = (rel: string, data: string): void => {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), data);
  };
  w('node_modules/left-pad/package.json', JSON.stringify({ name: 'left-pad', version }));
  w('node_modules/left-pad/index.js', `module.exports = ${JSON.stringify(version)};\n`);
  w(`node_modules/only-in-${version}/index.js`, 'module.exports = 1;\n');
  for (let i = 0; i < 40; i++) w(`node_modules/pkg-${i}/index.js`, `module.exports = ${i};\n`);
}

async function makeTree(version: string): Promise<string> {
  const src = join(base, `src-${version}`);
  makeFixture(src, version);
  return (await ingestDir(store, src)).tree;
}

const overlaysAt = (dir: string) => readMountTable().filter((m) => m.mountPoint === dir);
const mountedUnder = (dir: string) => readMountTable().filter((m) => m.mountPoint.startsWith(dir));

async function killed(pid: number): Promise<void> {
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 200 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 10));
  expect(isAlive(pid)).toBe(false);
}

function errCode(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

beforeAll(async () => {
  ({ base, store } = openMountSandbox('velo-mount-life-'));
  env = { VELO_HOME: store.home };
  treeA = await makeTree('1.0.0');
  treeB = await makeTree('2.0.0');
});

afterAll(() => removeMountSandbox(base, store));

describe('replacing what is at the destination', () => {
  it('stacks the mount over a link farm without the destination ever missing a file, then deletes the farm', async () => {
    const dest = join(base, 'farm/node_modules');
    await materialize(store, treeA, dest, { within: dirname(dest), method: 'hardlink' });
    const object = store.objectPath(readTree(store, treeA).entries.find((e) => e.path === 'node_modules/pkg-7/index.js')!.digest, false);
    expect(statSync(object).nlink).toBe(2);
    // a reader stats a file both trees have, all through the switch
    const watcher = spawn(process.execPath, ['-e', `
      const fs = require('fs'); const f = process.argv[1]; let n = 0, miss = 0; const end = Date.now() + 1500;
      console.log('ready');
      while (Date.now() < end) { n++; try { fs.statSync(f); } catch { miss++; } }
      console.log(JSON.stringify({ n, miss }));`, join(dest, 'node_modules/pkg-7/index.js')]);
    let outp = '';
    await new Promise<void>((resolve) => watcher.stdout.on('data', (d: Buffer) => ((outp += d), outp.includes('ready') && resolve())));
    const m = await mountProjection(store, treeB, dest, { within: dirname(dest) });
    const done = new Promise((resolve) => watcher.on('close', resolve));
    await done;
    const seen = JSON.parse(outp.split('\n')[1]!) as { n: number; miss: number };
    expect(seen.n).toBeGreaterThan(1000);
    expect(seen.miss).toBe(0);
    expect(m).toMatchObject({ method: 'overlay', replaced: 'directory', reused: false });
    expect(readFileSync(join(dest, 'node_modules/left-pad/index.js'), 'utf8')).toContain('2.0.0');
    expect(existsSync(join(dest, 'node_modules/only-in-1.0.0'))).toBe(false);
    // the farm is gone: no sibling left over, and the object is linked from nowhere else
    expect(readdirSync(dirname(dest)).filter((n) => n.includes('velo-'))).toEqual([]);
    expect(statSync(object).nlink).toBe(1);
  });

  it('leaves the same tree, already mounted and healthy, alone', async () => {
    const dest = join(base, 'farm/node_modules');
    const [before] = listMounts(store).filter((x) => x.dest === dest);
    const m = await mountProjection(store, treeB, dest, { within: dirname(dest) });
    expect(m).toMatchObject({ reused: true, pid: before!.pid, id: before!.id });
    expect(m.ms).toBeLessThan(1000);
  });

  it('with freshUpper replaces even the same tree: the writes made through the old mount are gone, atomically', async () => {
    const dest = join(base, 'farm/node_modules');
    const [before] = listMounts(store).filter((x) => x.dest === dest);
    writeFileSync(join(dest, 'written-before'), 'x');
    const m = await mountProjection(store, treeB, dest, { within: dirname(dest), freshUpper: true });
    expect(m).toMatchObject({ reused: false, replaced: 'mount', tree: treeB });
    expect(m.id).not.toBe(before!.id);
    expect(existsSync(join(dest, 'written-before'))).toBe(false);
    expect(listMounts(store).filter((x) => x.dest === dest).map((x) => x.id)).toEqual([m.id]);
    expect(listMounts(store).find((x) => x.dest === dest)!.upperSummary!.files).toBe(0);
  });

  it('after rm -rf through the mount (EBUSY at the mount point), the next mount of the same tree repairs the emptied view', async () => {
    const dest = join(base, 'emptied/node_modules');
    const first = await mountProjection(store, treeB, dest, { within: dirname(dest) });
    expect(readdirSync(dest)).toEqual(['node_modules']);
    const rm = spawnSync('rm', ['-rf', dest], { encoding: 'utf8' });
    expect(rm.status).not.toBe(0);
    expect(rm.stderr).toMatch(/Device or resource busy/);
    expect(readdirSync(dest)).toEqual([]);
    const m = await mountProjection(store, treeB, dest, { within: dirname(dest) });
    expect(m).toMatchObject({ reused: false, tree: treeB });
    expect(m.id).not.toBe(first.id);
    expect(readdirSync(dest)).toEqual(['node_modules']);
    expect(readFileSync(join(dest, 'node_modules/left-pad/index.js'), 'utf8')).toBe('module.exports = "2.0.0";\n');
    // the repaired mount is healthy: the next one leaves it alone
    expect(await mountProjection(store, treeB, dest, { within: dirname(dest) })).toMatchObject({ reused: true, id: m.id });
    await unmountProjection(dest);
  });

  it('replaces an earlier mount: the new view, a fresh upper layer, the old server and its layers gone', async () => {
    const dest = join(base, 'farm/node_modules');
    const [old] = listMounts(store).filter((x) => x.dest === dest);
    writeFileSync(join(dest, 'written-on-B'), 'x');
    const m = await mountProjection(store, treeA, dest, { within: dirname(dest) });
    expect(m).toMatchObject({ replaced: 'mount', reused: false, tree: treeA });
    expect(m.pid).not.toBe(old!.pid);
    expect(readFileSync(join(dest, 'node_modules/left-pad/index.js'), 'utf8')).toContain('1.0.0');
    expect(existsSync(join(dest, 'written-on-B'))).toBe(false);
    expect(listMounts(store).filter((x) => x.dest === dest).map((x) => x.id)).toEqual([m.id]);
    // the old server finishes in the background: unmounts its (parked) overlay and view, deletes its layers, exits
    for (let i = 0; i < 500 && (isAlive(old!.pid!) || existsSync(join(store.home, 'mounts', old!.id))); i++) await new Promise((r) => setTimeout(r, 20));
    expect(isAlive(old!.pid!)).toBe(false);
    expect(existsSync(join(store.home, 'mounts', old!.id))).toBe(false);
    expect(overlaysAt(dest)).toHaveLength(1);
    expect(mountedUnder(join(store.home, 'mounts')).map((e) => e.mountPoint)).toEqual([join(store.home, 'mounts', m.id, 'lower')]);
    expect(listMounts(store).filter((x) => x.dest === dest)).toHaveLength(1);
  });

  it('refuses a destination that is a file, or someone else\'s mount point', async () => {
    writeFileSync(join(base, 'a-file'), 'x');
    await expect(mountProjection(store, treeA, join(base, 'a-file'), { within: dirname(join(base, 'a-file')) })).rejects.toMatchObject({ code: 'REFUSED' });
    const foreign = join(base, 'foreign');
    mkdirSync(foreign);
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', foreign]);
    try {
      await expect(mountProjection(store, treeA, foreign, { within: dirname(foreign) })).rejects.toMatchObject({ code: 'REFUSED' });
    } finally {
      execFileSync('umount', [foreign]);
    }
    await expect(mountProjection(store, 'f'.repeat(64), join(base, 'nope'), { within: dirname(join(base, 'nope')) })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('unmounting', () => {
  it('unmounts while files are open: the open files fail cleanly, nothing stays mounted, the server exits', async () => {
    const dest = join(base, 'open/node_modules');
    const m = await mountProjection(store, treeA, dest, { within: dirname(dest) });
    writeFileSync(join(dest, 'scratch'), 'upper');
    const fd = openSync(join(dest, 'node_modules/pkg-3/index.js'), 'r');
    const dirFd = openSync(join(dest, 'node_modules/pkg-4'), 'r');
    const up = openSync(join(dest, 'scratch'), 'r');
    // no store given: the mount itself says which store it belongs to
    const u = await unmountProjection(dest);
    expect(u).toMatchObject({ dest, pid: m.pid, tree: treeA });
    expect(isAlive(m.pid)).toBe(false);
    expect(mountedUnder(dirname(dest))).toEqual([]);
    expect(mountedUnder(join(store.home, 'mounts', m.id))).toEqual([]);
    expect(['ok', 'ENOTCONN']).toContain(errCode(() => readSync(fd, Buffer.alloc(16), 0, 16, 0)));
    // a file of the upper layer stays readable through the detached overlay
    expect(errCode(() => readSync(up, Buffer.alloc(16), 0, 16, 0))).toBe('ok');
    for (const d of [fd, dirFd, up]) expect(['ok', 'ENOTCONN']).toContain(errCode(() => closeSync(d)));
    expect(readdirSync(dest)).toEqual([]);
    expect(existsSync(join(store.home, 'mounts', m.id))).toBe(false);
    expect(store.index.prepare('SELECT count(*) AS n FROM projects WHERE path = ?').get(dest)).toEqual({ n: 0 });
    await expect(unmountProjection(dest, { store })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('a killed server', () => {
  it('is reported (Transport endpoint is not connected) and repaired by the next mountProjection, keeping what was written', async () => {
    const dest = join(base, 'killed/node_modules');
    const m = await mountProjection(store, treeA, dest, { within: dirname(dest) });
    writeFileSync(join(dest, 'keep.txt'), 'kept');
    await killed(m.pid);
    // a request the kernel had in flight when the connection died ends ECONNABORTED, later ones ENOTCONN
    expect(['ENOTCONN', 'ECONNABORTED']).toContain(errCode(() => readdirSync(join(dest, 'node_modules'))));
    expect(errCode(() => readdirSync(join(dest, 'node_modules/pkg-1')))).toBe('ENOTCONN');
    const [stale] = listMounts(store).filter((x) => x.dest === dest);
    expect(stale).toMatchObject({ state: 'stale', pid: undefined });
    expect(stale!.reason).toMatch(/server process is gone.*Transport endpoint is not connected/);
    const again = await mountProjection(store, treeA, dest, { within: dirname(dest) });
    expect(again.repaired).toHaveLength(1);
    expect(again.repaired[0]).toMatchObject({ dest, action: 'remounted', id: m.id });
    expect(again).toMatchObject({ reused: true, id: m.id });
    expect(again.pid).not.toBe(m.pid);
    expect(isAlive(again.pid)).toBe(true);
    expect(readFileSync(join(dest, 'keep.txt'), 'utf8')).toBe('kept');
    expect(readdirSync(join(dest, 'node_modules'))).toContain('pkg-39');
    expect(overlaysAt(dest)).toHaveLength(1);
  });

  it('is repaired after its overlay was unmounted from outside', async () => {
    const dest = join(base, 'killed/node_modules');
    execFileSync('umount', [dest]);
    const [stale] = listMounts(store).filter((x) => x.dest === dest);
    expect(stale!.reason).toMatch(/overlay .* was unmounted/);
    const r = await repairStaleMounts(store, dest);
    expect(r).toMatchObject([{ action: 'remounted', dest }]);
    expect(readFileSync(join(dest, 'keep.txt'), 'utf8')).toBe('kept');
    expect(isAlive(stale!.pid!)).toBe(false);
  });

  it('is reported and repaired by velo mounts', async () => {
    const dest = join(base, 'killed/node_modules');
    const [m] = listMounts(store).filter((x) => x.dest === dest);
    await killed(m!.pid!);
    const r = velo(['mounts', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { repaired: { dest: string; action: string; reason: string }[]; mounts: { dest: string; state: string; pid: number }[] };
    expect(out.repaired).toMatchObject([{ dest, action: 'remounted' }]);
    expect(out.repaired[0]!.reason).toMatch(/Transport endpoint is not connected/);
    const now = out.mounts.find((x) => x.dest === dest)!;
    expect(now.state).toBe('mounted');
    expect(isAlive(now.pid)).toBe(true);
    expect(readFileSync(join(dest, 'keep.txt'), 'utf8')).toBe('kept');
    await killed(now.pid);
    const text = velo(['mounts'], env);
    expect(text.stderr).toMatch(new RegExp(`velo: repaired ${dest}: its server process is gone.*; remounted \\(server pid \\d+\\)`));
    expect(text.stdout).toMatch(/served by pid \d+/);
  });
});

describe('velo mount, umount, mounts', () => {
  it('each has --help', () => {
    for (const cmd of ['mount', 'umount', 'mounts']) {
      const r = velo([cmd, '--help'], env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: velo ${cmd} `));
    }
    expect(velo(['--help'], env).stdout).toMatch(/\n +mounts +list mounts/);
  });

  it('mounts a tree, or the tree velo installed in a project dir; the mount outlives the command; umount and --all end them', () => {
    const project = join(base, 'proj');
    registerProject(store, { path: join(project, 'node_modules'), ecosystem: 'npm', tree: treeB, method: 'hardlink' });
    const a = join(base, 'cli-a');
    const b = join(base, 'cli-b');
    const r1 = velo(['mount', treeA, a, '--json'], env);
    expect(r1.code, r1.stderr).toBe(0);
    const j1 = JSON.parse(r1.stdout) as { pid: number; method: string; dest: string; tree: string };
    expect(j1).toMatchObject({ method: 'overlay', dest: a, tree: treeA });
    expect(isAlive(j1.pid)).toBe(true); // the command has exited; its server has not
    expect(readFileSync(join(a, 'node_modules/left-pad/index.js'), 'utf8')).toContain('1.0.0');
    const r2 = velo(['mount', 'proj', 'cli-b'], env, base);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stdout).toMatch(new RegExp(`mounted tree ${treeB.slice(0, 12)} \\(installed at ${project}/node_modules\\) at ${b}: 43 files`));
    expect(r2.stdout).toMatch(/writable: writes go to /);
    expect(readFileSync(join(b, 'node_modules/left-pad/index.js'), 'utf8')).toContain('2.0.0');
    const list = velo(['mounts'], env);
    expect(list.stdout).toContain(`${a}\n  tree ${treeA.slice(0, 12)} (43 files`);
    expect(list.stdout).toContain(`${b}\n  tree ${treeB.slice(0, 12)}`);
    const u = velo(['umount', a], env);
    expect(u.code, u.stderr).toBe(0);
    expect(u.stdout).toBe(`unmounted ${a} (server pid ${j1.pid} stopped)\n`);
    expect(isAlive(j1.pid)).toBe(false);
    expect(velo(['umount', a], env)).toMatchObject({ code: 3 });
    const all = velo(['umount', '--all', '--json'], env);
    expect(all.code, all.stderr).toBe(0);
    expect((JSON.parse(all.stdout) as { dest: string }[]).map((x) => x.dest)).toContain(b);
    expect(mountedUnder(base)).toEqual([]);
    expect(velo(['mounts'], env).stdout).toBe('no mounts\n');
    const bare = velo(['umount'], env);
    expect(bare.code, bare.stderr).toBe(2);
  });

  it('mounts read-only with --read-only', () => {
    const dest = join(base, 'cli-ro');
    const r = velo(['mount', treeA, dest], env);
    expect(r.code, r.stderr).toBe(0);
    const ro = velo(['mount', treeA, dest, '--read-only'], env);
    expect(ro.code, ro.stderr).toBe(0);
    expect(ro.stdout).toMatch(/read-only: asked for a read-only mount/);
    expect(errCode(() => writeFileSync(join(dest, 'x'), 'x'))).toBe('EROFS');
    expect(velo(['umount', dest], env).code).toBe(0);
  });

  it('says in one line that FUSE is unavailable (exit 15) when the addon is missing, and refuses a file (exit 16)', () => {
    const r = velo(['mount', treeA, join(base, 'nofuse')], { ...env, VELO_NATIVE_ADDON: join(base, 'absent', 'velo_native.node') });
    expect(r.code, r.stderr).toBe(15);
    expect(r.stderr.split('\n')[0]).toMatch(/^velo: FUSE is unavailable: the native addon is not available \(.*absent.*\)$/);
    expect(r.stderr).toMatch(/hint: use the link projection/);
    expect(existsSync(join(base, 'nofuse'))).toBe(false);
    writeFileSync(join(base, 'plain-file'), '');
    const f = velo(['mount', treeA, join(base, 'plain-file')], env);
    expect(f.code, f.stderr).toBe(16);
    expect(basename(f.stderr)).toMatch(/is not a directory/);
  });
});

