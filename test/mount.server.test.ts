// velo-mountd, the small C process that serves each mount: what it records
// (server.json), how it answers signals (SIGHUP, SIGUSR2 retire, SIGTERM),
// leaving when its view is unmounted from outside, FUSE passthrough under an
// overlay, how it reports errors to velo, and mounting without root.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync,
} from 'node:fs';
import { join, dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeModulesEntries, writeObjects } from '../native/test-support/syntheticTree.mjs';
import { writeTree } from '../native/test-support/treeWriter.mjs';
import { ingestDir } from '../src/store/addFilesFromDir.js';
import { Store } from '../src/store/store.js';
import { listMounts, mountProjection, repairStaleMounts, unmountProjection } from '../src/mount/mount.js';
import { serverBinary, startTicks } from '../src/mount/mountProcess.js';
import { readMountTable } from '../src/mount/mountTable.js';
import { velo } from './support/runVelo.js';
import { isAlive, openMountSandbox, removeMountSandbox } from './support/mountSandbox.js';

let base: string;
let store: Store;
let tree: string;
let src: string;
const files: Record<string, Buffer> = {};

const mountedUnder = (dir: string) => readMountTable().filter((m) => m.mountPoint.startsWith(dir));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function gone(pid: number): Promise<void> {
  for (let i = 0; i < 300 && isAlive(pid); i++) await sleep(10);
  expect(isAlive(pid)).toBe(false);
}

const mountDirOf = (id: string) => join(store.home, 'mounts', id);
const logOf = (id: string) => readFileSync(join(mountDirOf(id), 'server.log'), 'utf8');

beforeAll(async () => {
  ({ base, store } = openMountSandbox('velo-mount-server-'));
  chmodSync(base, 0o755); // the unprivileged server below reads under it
  src = join(base, 'src');
  const w = (rel: string, data: Buffer): void => {
    mkdirSync(join(src, rel, '..'), { recursive: true });
    writeFileSync(join(src, rel), data);
    files[rel] = data;
  };
  for (let i = 0; i < 30; i++) w(`node_modules/pkg-${i}/index.js`, Buffer.from(`module.exports = ${i};\n`));
  const big = Buffer.alloc(3 * 1024 * 1024 + 17);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 11)) & 0xff;
  w('data/big.bin', big);
  tree = (await ingestDir(store, src)).tree;
});

afterAll(() => removeMountSandbox(base, store));

describe('the server of a mount', () => {
  it('is velo-mountd (no Node): it records pid, start ticks, id, view and start time in server.json, logs, and lets go of velo', async () => {
    const dest = join(base, 'info');
    const t0 = Date.now();
    const m = await mountProjection(store, tree, dest, { within: dirname(dest) });
    expect(readFileSync(`/proc/${m.pid}/comm`, 'utf8').trim()).toBe('velo-mountd');
    expect(readlinkSync(`/proc/${m.pid}/exe`)).toBe(serverBinary());
    const info = JSON.parse(readFileSync(join(mountDirOf(m.id), 'server.json'), 'utf8')) as Record<string, unknown>;
    expect(Object.keys(info)).toEqual(['pid', 'ticks', 'id', 'fuseAt', 'started']);
    expect(info).toMatchObject({ pid: m.pid, ticks: startTicks(m.pid), id: m.id, fuseAt: join(mountDirOf(m.id), 'lower') });
    expect(info.started).toBeGreaterThanOrEqual(t0 - 1000);
    expect(info.started).toBeLessThanOrEqual(Date.now());
    expect(readdirSync(mountDirOf(m.id)).filter((n) => n.startsWith('server.json.'))).toEqual([]); // written by rename
    expect(logOf(m.id)).toContain(`serving tree ${tree} at ${join(mountDirOf(m.id), 'lower')} (overlay → ${dest})`);
    // its stdout (velo's pipe) is let go; it is a session leader of its own
    expect(readlinkSync(`/proc/${m.pid}/fd/1`)).toBe('/dev/null');
    const stat = readFileSync(`/proc/${m.pid}/stat`, 'utf8');
    expect(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]).toBe(String(m.pid)); // session id
    expect(readFileSync(join(dest, 'data/big.bin')).equals(files['data/big.bin']!)).toBe(true);
  });

  it('ignores SIGHUP', async () => {
    const [m] = listMounts(store).filter((x) => x.dest === join(base, 'info'));
    process.kill(m!.pid!, 'SIGHUP');
    for (let i = 0; i < 100 && !logOf(m!.id).includes('SIGHUP ignored'); i++) await sleep(10);
    expect(logOf(m!.id)).toContain('SIGHUP ignored');
    expect(isAlive(m!.pid!)).toBe(true);
    expect(readFileSync(join(m!.dest, 'node_modules/pkg-3/index.js'), 'utf8')).toBe('module.exports = 3;\n');
    await unmountProjection(m!.dest, { store });
    await gone(m!.pid!);
  });

  it('retires on SIGUSR2: unmounts its overlay and view, deletes its directory and its upper layer elsewhere, exits', async () => {
    const dest = join(base, 'retire');
    const uppers = join(base, 'uppers');
    const m = await mountProjection(store, tree, dest, { within: dirname(dest), upperBase: uppers });
    writeFileSync(join(dest, 'written'), 'x');
    expect(readFileSync(join(uppers, m.id, 'upper', 'written'), 'utf8')).toBe('x');
    process.kill(m.pid, 'SIGUSR2');
    await gone(m.pid);
    expect(mountedUnder(dest)).toEqual([]);
    expect(mountedUnder(mountDirOf(m.id))).toEqual([]);
    expect(existsSync(mountDirOf(m.id))).toBe(false);
    expect(existsSync(join(uppers, m.id))).toBe(false);
    expect(readdirSync(dest)).toEqual([]);
  });

  it('exits when its FUSE view is unmounted from outside; the next velo command mounts it again', async () => {
    const dest = join(base, 'outside');
    const m = await mountProjection(store, tree, dest, { within: dirname(dest), overlay: false });
    expect(m.method).toBe('fuse-ro');
    execFileSync('umount', [dest]);
    await gone(m.pid);
    expect(logOf(m.id)).toContain('stopping: the FUSE view was unmounted from outside');
    expect(existsSync(join(mountDirOf(m.id), 'server.json'))).toBe(false);
    const [stale] = listMounts(store).filter((x) => x.dest === dest);
    expect(stale).toMatchObject({ state: 'stale', pid: undefined });
    const r = await repairStaleMounts(store, dest);
    expect(r).toMatchObject([{ action: 'remounted', dest }]);
    expect(isAlive(r[0]!.pid!)).toBe(true);
    expect(readFileSync(join(dest, 'node_modules/pkg-7/index.js'), 'utf8')).toBe('module.exports = 7;\n');
    await unmountProjection(dest, { store });
  });

  it('serves reads by FUSE passthrough when asked (VELO_FUSE_PASSTHROUGH=1), under a working overlay', async () => {
    const dest = join(base, 'passthrough');
    process.env.VELO_FUSE_PASSTHROUGH = '1';
    let m;
    try {
      m = await mountProjection(store, tree, dest, { within: dirname(dest) });
    } finally {
      delete process.env.VELO_FUSE_PASSTHROUGH;
    }
    for (const [rel, data] of Object.entries(files)) expect(readFileSync(join(dest, rel)).equals(data)).toBe(true);
    writeFileSync(join(dest, 'node_modules/pkg-1/index.js'), 'changed\n'); // a copy-up reads the lower file
    expect(readFileSync(join(m.upper!, 'node_modules/pkg-1/index.js'), 'utf8')).toBe('changed\n');
    expect(logOf(m.id)).toMatch(/reads are served by FUSE passthrough \(asked for; 31 files/);
    process.kill(m.pid, 'SIGTERM');
    await gone(m.pid);
    const log = logOf(m.id);
    expect(log).toContain('stopping: SIGTERM');
    expect(log).toMatch(/served \d+ opens \(\d+ backing files registered for passthrough\), 0 read requests/);
    expect(mountedUnder(dest)).toEqual([]);
    await unmountProjection(dest, { store });
  });

  it('serves a tree of small files by splice (zero-message opens) when not asked', async () => {
    const dest = join(base, 'auto');
    const m = await mountProjection(store, tree, dest, { within: dirname(dest) });
    expect(readFileSync(join(dest, 'node_modules/pkg-2/index.js'), 'utf8')).toBe('module.exports = 2;\n');
    expect(logOf(m.id)).toMatch(/reads are served by splice \(files average under 256 KiB/);
    await unmountProjection(dest, { store });
  });
});

describe('finding velo-mountd', () => {
  it('looks beside the native addon; without it velo says in one line that FUSE is unavailable', () => {
    const lone = join(base, 'lone-addon');
    mkdirSync(lone);
    copyFileSync(join(serverBinary()!, '..', 'velo_native.node'), join(lone, 'velo_native.node'));
    const env = { VELO_HOME: store.home, VELO_NATIVE_ADDON: join(lone, 'velo_native.node') };
    const r = velo(['mount', tree, join(base, 'no-server')], env);
    expect(r.code, r.stderr).toBe(15);
    expect(r.stderr.split('\n')[0]).toBe('velo: FUSE is unavailable: the mount server velo-mountd is not built (run npm run build:native)');
    copyFileSync(serverBinary()!, join(lone, 'velo-mountd'));
    chmodSync(join(lone, 'velo-mountd'), 0o755);
    const ok = velo(['mount', tree, join(base, 'no-server'), '--json'], env);
    expect(ok.code, ok.stderr).toBe(0);
    const pid = (JSON.parse(ok.stdout) as { pid: number }).pid;
    expect(readlinkSync(`/proc/${pid}/exe`)).toBe(join(lone, 'velo-mountd'));
    expect(velo(['umount', join(base, 'no-server')], env).code).toBe(0);
  });
});

describe('velo-mountd run by hand', () => {
  let own: string;
  let treeFile: string;
  let objects: string;
  let entries: { path: string; kind: string; data?: Buffer }[];

  beforeAll(() => {
    own = join(base, 'own');
    objects = join(own, 'objects');
    mkdirSync(objects, { recursive: true });
    entries = nodeModulesEntries({ packages: 3 });
    writeObjects(objects, entries);
    treeFile = join(own, 'tree');
    writeFileSync(treeFile, writeTree(entries));
  });

  const args = (dir: string, tree: string, objs: string, at: string) =>
    ['--dir', dir, '--id', 'by-hand', '--tree', tree, '--objects', objs, '--fuse-at', at, '--method', 'fuse-ro'];

  it('reports a corrupt tree or a missing objects dir on stdout in one line and exits 1, mounting nothing', () => {
    const dir = join(own, 'err');
    const at = join(own, 'err-at');
    mkdirSync(dir);
    mkdirSync(at);
    writeFileSync(join(own, 'bad-tree'), readFileSync(treeFile).subarray(0, 90));
    const bad = spawnSync(serverBinary()!, args(dir, join(own, 'bad-tree'), objects, at), { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/^error CORRUPT_TREE corrupt tree: .*\n$/);
    const missing = spawnSync(serverBinary()!, args(dir, treeFile, join(own, 'absent'), at), { encoding: 'utf8' });
    expect(missing.status).toBe(1);
    expect(missing.stdout).toMatch(/^error ENOENT ENOENT: No such file or directory, open '.*absent'\n$/);
    expect(readFileSync(join(dir, 'server.log'), 'utf8')).toMatch(/mount failed: CORRUPT_TREE/);
    expect(mountedUnder(own)).toEqual([]);
    expect(existsSync(join(dir, 'server.json'))).toBe(false);
    const usage = spawnSync(serverBinary()!, ['--dir', dir], { encoding: 'utf8' });
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/^usage: velo-mountd /);
  });

  it('mounts the overlay too when asked, and when overlayfs refuses says OVERLAY_FAILED and leaves nothing mounted', async () => {
    const dir = join(own, 'ovl');
    const lower = join(dir, 'lower');
    const dest = join(own, 'ovl-dest');
    for (const d of [dir, lower, dest, join(dir, 'upper'), join(dir, 'upper', 'work')]) mkdirSync(d, { recursive: true });
    const common = [...args(dir, treeFile, objects, lower).slice(0, -2), '--method', 'overlay', '--dest', dest];
    // overlayfs refuses a work dir inside the upper dir (EINVAL)
    const bad = spawnSync(serverBinary()!, [...common, '--overlay-upper', join(dir, 'upper'), '--overlay-work', join(dir, 'upper', 'work')], { encoding: 'utf8' });
    expect(bad.stdout).toBe('error OVERLAY_FAILED EINVAL: Invalid argument\n');
    expect(bad.status).toBe(1);
    expect(mountedUnder(own)).toEqual([]);
    mkdirSync(join(dir, 'work'));
    const child = spawn(serverBinary()!, [...common, '--overlay-upper', join(dir, 'upper'), '--overlay-work', join(dir, 'work')], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const line = await new Promise<string>((resolve) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => ((out += d), out.includes('\n') && resolve(out)));
    });
    expect(line).toBe(`ready ${child.pid}\n`);
    const top = readMountTable().filter((m) => m.mountPoint === dest).at(-1);
    expect(top).toMatchObject({ fsType: 'overlay', source: 'velo' });
    expect(top!.superOptions).toContain(`lowerdir=${lower},upperdir=${join(dir, 'upper')},workdir=${join(dir, 'work')}`);
    writeFileSync(join(dest, 'new'), 'x');
    expect(readFileSync(join(dir, 'upper', 'new'), 'utf8')).toBe('x');
    child.kill('SIGTERM'); // unmounts the overlay, then the view
    expect(await exited).toBe(0);
    expect(mountedUnder(own)).toEqual([]);
  });

  it('mounts without root through fusermount3 and reads by splice; or, where /dev/fuse is root-only, says so in one line', async () => {
    const nobody = 65534;
    const bin = join(own, 'velo-mountd'); // a copy outside the checkout, which nobody may not be able to read
    copyFileSync(serverBinary()!, bin);
    chmodSync(bin, 0o755);
    const dir = join(own, 'nr');
    const at = join(own, 'nr-at');
    for (const d of [dir, at]) {
      mkdirSync(d);
      chownSync(d, nobody, nobody);
    }
    const child = spawn(bin, args(dir, treeFile, objects, at), { uid: nobody, gid: nobody, stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const line = await new Promise<string>((resolve) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => ((out += d), out.includes('\n') && resolve(out)));
      child.on('exit', () => resolve(out));
    });
    if ((statSync('/dev/fuse').mode & 0o006) !== 0o006) {
      // containers often keep /dev/fuse root-only (0600): nobody cannot mount, and is told why
      expect(line).toBe('error FUSE_UNAVAILABLE FUSE is not available: cannot open /dev/fuse (EACCES: Permission denied)\n');
      expect(await exited).toBe(1);
      expect(readMountTable().find((m) => m.mountPoint === at)).toBeUndefined();
      return;
    }
    expect(line).toBe(`ready ${child.pid}\n`);
    expect(readMountTable().find((m) => m.mountPoint === at)?.fsType).toBe('fuse.velo');
    const file = entries.find((e) => e.path === 'node_modules/pkg-1/index.js')!;
    // without allow_other only its owner may look inside
    const cat = spawnSync('cat', [join(at, file.path)], { uid: nobody, gid: nobody });
    expect(cat.status).toBe(0);
    expect(cat.stdout.equals(file.data!)).toBe(true);
    const info = JSON.parse(readFileSync(join(dir, 'server.json'), 'utf8')) as { pid: number };
    expect(info.pid).toBe(child.pid);
    expect(readFileSync(join(dir, 'server.log'), 'utf8')).toMatch(/reads are served by splice \(not root: no FUSE passthrough/);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(readMountTable().find((m) => m.mountPoint === at)).toBeUndefined();
    expect(existsSync(join(dir, 'server.json'))).toBe(false);
  });
});
