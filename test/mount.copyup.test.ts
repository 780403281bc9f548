// Writable mounts without overlayfs: the FUSE view itself is writable and
// its server (velo-mountd) copies writes up into the mount's upper
// directory (method 'fuse-rw', native/src/fuse_upper.c). Forced here as
// root with copyUp (and VELO_MOUNT_OVERLAY=0), and checked against a kernel
// overlayfs over a plain copy of the same tree: the same edits must have the
// same outcomes and leave the same tree. Then: the store is never written,
// the changes survive a killed and a stopped server (the repair remounts
// over the same upper), node resolves modules from the mount and writes its
// cache into it, and an unprivileged user gets the same writable mount
// through fusermount3.
import { execFileSync } from 'node:child_process';
import {
  appendFileSync, chmodSync, chownSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync,
  renameSync, rmdirSync, rmSync, statSync, symlinkSync, truncateSync, unlinkSync, writeFileSync, writeSync,
} from 'node:fs';
import { join, dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestDir } from '../src/store/addFilesFromDir.js';
import { Store } from '../src/store/store.js';
import { listMounts, mountProjection, repairStaleMounts, unmountProjection, type MountResult } from '../src/mount/mount.js';
import { stopServer } from '../src/mount/mountProcess.js';
import { topMountAt } from '../src/mount/mountTable.js';
import { summarizeUpper } from '../src/mount/mountUpper.js';
import { checkoutForNobody } from './support/asNobody.js';
import { isAlive, killLeftoverServers, openMountSandbox, removeMountSandbox } from './support/mountSandbox.js';
import { veloEnv } from './support/runVelo.js';
import { veloBin } from './support/paths.js';
import { expectObjectsIntact, makeEditFixture, mountReferenceOverlay, snapshot, stepRecorder, type ReferenceOverlay } from './support/editFixture.js';

let base: string;
let store: Store;
let tree: string;
let mounted: MountResult;
/** a kernel overlay over a plain copy of the same tree: the reference */
let ref: ReferenceOverlay;



/** The same sequence of edits, with the outcome of each (ok or the errno code). */
function edits(root: string): Record<string, string> {
  const { outcome, step } = stepRecorder();
  const p = (rel: string): string => join(root, rel);
  step('create a file', () => writeFileSync(p('node_modules/.cache'), 'cache\n'));
  step('create a dir tree', () => mkdirSync(p('node_modules/new/sub'), { recursive: true }));
  step('create a symlink', () => symlinkSync('../a', p('node_modules/new/link')));
  step('overwrite a file', () => writeFileSync(p('node_modules/a/index.js'), 'module.exports = "A";\n'));
  step('append to a file', () => appendFileSync(p('node_modules/a/README.md'), 'more\n'));
  step('truncate a file', () => truncateSync(p('node_modules/b/lib/one.js'), 1));
  step('write into the middle of a big file', () => {
    const fd = openSync(p('big.bin'), 'r+');
    writeSync(fd, 'MIDDLE', 150_000);
    closeSync(fd);
  });
  step('delete a file', () => rmSync(p('node_modules/b/lib/two.js')));
  step('delete a dir tree', () => rmSync(p('node_modules/c'), { recursive: true }));
  step('recreate a deleted dir (opaque)', () => mkdirSync(p('node_modules/c')));
  step('a file in the recreated dir', () => writeFileSync(p('node_modules/c/fresh.txt'), 'fresh\n'));
  step('rename a file', () => renameSync(p('node_modules/b/index.js'), p('node_modules/b/main.js')));
  step('rename a file over another', () => renameSync(p('node_modules/d/x.js'), p('node_modules/d/y.js')));
  step('rename a tree dir (rename(2))', () => renameSync(p('node_modules/a'), p('node_modules/a2')));
  step('rename a new dir', () => renameSync(p('node_modules/new'), p('node_modules/new2')));
  step('mv a tree dir (mv copies on EXDEV)', () => execFileSync('mv', [p('node_modules/b/lib'), p('node_modules/b/lib2')]));
  step('mkdir then rmdir', () => {
    mkdirSync(p('node_modules/e/tmpdir'));
    rmdirSync(p('node_modules/e/tmpdir'));
  });
  step('rmdir a non-empty tree dir', () => rmdirSync(p('node_modules/e')));
  step('chmod a file', () => chmodSync(p('same-as-a.js'), 0o600));
  step('chmod +x a file', () => chmodSync(p('node_modules/b/lib2/one.js'), 0o755));
  step('replace a symlink', () => {
    rmSync(p('link-to-a'));
    symlinkSync('bin', p('link-to-a'));
  });
  step('recreate a deleted file', () => writeFileSync(p('node_modules/b/lib2/two.js'), 'two again\n'));
  step('a hidden marker name is refused', () => writeFileSync(p('node_modules/.velo.wh.x'), ''));
  return outcome;
}

function errorCode(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  }
}

function sortedPaths(s: ReturnType<typeof summarizeUpper>): unknown {
  return { ...s, paths: [...s.paths].sort() };
}

beforeAll(async () => {
  ({ base, store } = openMountSandbox('velo-mount-copyup-'));
  chmodSync(base, 0o755); // the unprivileged test below reaches into it
  const src = join(base, 'src');
  makeEditFixture(src, { more: true });
  tree = (await ingestDir(store, src, { mtimes: true })).tree;
  ref = await mountReferenceOverlay(base, store, tree);
  mounted = await mountProjection(store, tree, join(base, 'dest'), { within: dirname(join(base, 'dest')), copyUp: true });
});

afterAll(async () => {
  spawnUmount(ref?.merged);
  if (base) killLeftoverServers(join(base, 'nobody', 'home'));
  await removeMountSandbox(base, store);
});

function spawnUmount(path: string | undefined): void {
  if (path && readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${path} `)) execFileSync('umount', ['-l', path]);
}

describe('a copy-up mount (fuse-rw)', () => {
  it('is the FUSE view itself, writable, with an upper layer and no overlay', () => {
    expect(mounted.method).toBe('fuse-rw');
    expect(mounted.upper).toBe(join(store.home, 'mounts', mounted.id, 'upper'));
    expect(mounted.readOnlyReason).toBeUndefined();
    expect(topMountAt(mounted.dest)?.fsType).toBe('fuse.velo');
    expect(topMountAt(mounted.dest)?.options.split(',')).toContain('rw');
    const log = readFileSync(join(store.home, 'mounts', mounted.id, 'server.log'), 'utf8');
    expect(log).toMatch(/fuse-rw: writes are copied up into /);
    expect(log).toMatch(/copy-up mode: writes must never reach a backing object/);
  });

  it('overwrites, appends and truncates a tree file in place of the object, keeping its inode number', () => {
    const f = join(mounted.dest, 'node_modules/e/keep.txt');
    const ino = statSync(f).ino;
    const reader = openSync(f, 'r'); // opened before the copy-up
    writeFileSync(f, 'KEEP\n');
    expect(readFileSync(f, 'utf8')).toBe('KEEP\n'); // a second open sees the new bytes
    const buf = Buffer.alloc(16);
    expect(buf.toString('utf8', 0, readSync(reader, buf, 0, 16, 0))).toBe('KEEP\n'); // and so does the earlier one
    closeSync(reader);
    appendFileSync(f, 'again\n');
    expect(readFileSync(f, 'utf8')).toBe('KEEP\nagain\n');
    truncateSync(f, 2);
    expect(readFileSync(f, 'utf8')).toBe('KE');
    expect(statSync(f).ino).toBe(ino);
    writeFileSync(f, 'keep\n'); // back to the tree's bytes (the comparison with the overlay below starts from here)
    expect(readFileSync(join(mounted.upper!, 'node_modules/e/keep.txt'), 'utf8')).toBe('keep\n');
  });

  it('deletes a tree file (gone from the listing, stat ENOENT) and recreates it', () => {
    const dir = join(mounted.dest, 'node_modules/d');
    unlinkSync(join(dir, 'y.js'));
    expect(readdirSync(dir)).toEqual(['x.js']);
    expect(errorCode(() => statSync(join(dir, 'y.js')))).toBe('ENOENT');
    expect(existsSync(join(mounted.upper!, 'node_modules/d/.velo.wh.y.js'))).toBe(true);
    writeFileSync(join(dir, 'y.js'), 'y\n');
    expect(readdirSync(dir).sort()).toEqual(['x.js', 'y.js']);
    expect(readFileSync(join(dir, 'y.js'), 'utf8')).toBe('y\n');
    expect(existsSync(join(mounted.upper!, 'node_modules/d/.velo.wh.y.js'))).toBe(false);
  });

  let outcomes: { velo: Record<string, string>; ref: Record<string, string> };

  it('create, overwrite, delete, rename, chmod and symlink behave as on overlayfs over a plain directory', () => {
    // the two steps above, done on the reference too, so both start alike
    writeFileSync(join(ref.merged, 'node_modules/e/keep.txt'), 'keep\n');
    unlinkSync(join(ref.merged, 'node_modules/d/y.js'));
    writeFileSync(join(ref.merged, 'node_modules/d/y.js'), 'y\n');
    outcomes = { velo: edits(mounted.dest), ref: edits(ref.merged) };
    // the reserved marker names are the one difference (overlayfs has none)
    expect(outcomes.velo['a hidden marker name is refused']).toBe('EPERM');
    delete outcomes.velo['a hidden marker name is refused'];
    delete outcomes.ref['a hidden marker name is refused'];
    rmSync(join(ref.merged, 'node_modules/.velo.wh.x'), { force: true });
    expect(outcomes.velo).toEqual(outcomes.ref);
    // without redirect_dir, rename(2) of a tree directory is EXDEV (mv then copies)
    expect(outcomes.velo['rename a tree dir (rename(2))']).toBe('EXDEV');
    expect(outcomes.velo['rmdir a non-empty tree dir']).toBe('ENOTEMPTY');
    const failed = Object.entries(outcomes.velo).filter(([, v]) => v !== 'ok').map(([k]) => k);
    expect(failed.sort()).toEqual(['rename a tree dir (rename(2))', 'rmdir a non-empty tree dir']);
    expect(snapshot(mounted.dest)).toEqual(snapshot(ref.merged));
    expect(readdirSync(join(mounted.dest, 'node_modules')).sort()).toEqual(['.cache', 'a', 'b', 'c', 'd', 'e', 'new2']);
    expect(readdirSync(join(mounted.dest, 'node_modules/c'))).toEqual(['fresh.txt']); // opaque: nothing of the tree's c shows
  });

  it('puts every change in the upper layer, as overlayfs does', () => {
    const velo = summarizeUpper(mounted.upper!, 1000);
    const plain = summarizeUpper(ref.upper, 1000);
    expect(sortedPaths(velo)).toEqual(sortedPaths(plain));
    expect(velo.deleted).toBeGreaterThan(0);
    expect(readFileSync(join(mounted.upper!, 'node_modules/a/index.js'), 'utf8')).toBe('module.exports = "A";\n');
    expect(existsSync(join(mounted.upper!, 'node_modules/c/.velo.wh..velo.wh.opq'))).toBe(true);
  });

  it('never writes to the store: every object re-hashes to its name with its mode and mtime', () => {
    expect(expectObjectsIntact(store, tree)).toBe(14);
  });

  it('shows what the upper layer holds in listMounts and velo status', () => {
    const [m] = listMounts(store);
    expect(m!.method).toBe('fuse-rw');
    expect(m!.upperSummary!.files).toBeGreaterThan(5);
    expect(m!.upperSummary!.deleted).toBeGreaterThan(0);
    const r = execFileSync(process.execPath, [veloBin(), 'status'], { env: veloEnv({ VELO_HOME: store.home }), encoding: 'utf8' });
    expect(r).toMatch(new RegExp(`mounts +1\\n +${mounted.dest} fuse-rw, pid ${mounted.pid}: upper \\d+ file\\(s\\) written \\([^)]*\\), \\d+ deleted — `));
  });

  it('keeps every change when its server is killed (kill -9) or stopped, and the repair remounts over the same upper', async () => {
    const before = snapshot(mounted.dest);
    process.kill(mounted.pid, 'SIGKILL');
    for (let i = 0; i < 100 && isAlive(mounted.pid); i++) await new Promise((r) => setTimeout(r, 10));
    const [killed] = await repairStaleMounts(store);
    expect(killed).toMatchObject({ action: 'remounted', dest: mounted.dest });
    expect(snapshot(mounted.dest)).toEqual(before);
    expect(stopServer(killed!.pid!)).toBe(true);
    const [stopped] = await repairStaleMounts(store);
    expect(stopped).toMatchObject({ action: 'remounted' });
    expect(snapshot(mounted.dest)).toEqual(before);
    expect(listMounts(store)[0]!.method).toBe('fuse-rw');
    // and it is still writable
    writeFileSync(join(mounted.dest, 'after-repair.txt'), 'ok\n');
    expect(readFileSync(join(mounted.upper!, 'after-repair.txt'), 'utf8')).toBe('ok\n');
  });
});

describe('node on a copy-up mount (VELO_MOUNT_OVERLAY=0)', () => {
  it('resolves modules from the mounted node_modules and writes its cache into it', async () => {
    const project = join(base, 'project');
    mkdirSync(project);
    const sub = await ingestDir(store, join(base, 'src/node_modules'), { mtimes: true });
    process.env.VELO_MOUNT_OVERLAY = '0';
    let m: MountResult;
    try {
      m = await mountProjection(store, sub.tree, join(project, 'node_modules'), { within: dirname(join(project, 'node_modules')), upperBase: join(base, 'uppers') });
    } finally {
      delete process.env.VELO_MOUNT_OVERLAY;
    }
    expect(m.method).toBe('fuse-rw');
    const run = (code: string): string => execFileSync(process.execPath, ['-e', code], { cwd: project, encoding: 'utf8' });
    expect(run('console.log(require("a"), require("b"))')).toBe('a b\n');
    // a cache the way tools write one: mkdir -p, a temporary file renamed over the final name
    const cache = `
      const fs = require('fs');
      fs.mkdirSync('node_modules/.cache/tool', { recursive: true });
      for (const n of [1, 2]) {
        fs.writeFileSync('node_modules/.cache/tool/entry.json.tmp', JSON.stringify({ n }));
        fs.renameSync('node_modules/.cache/tool/entry.json.tmp', 'node_modules/.cache/tool/entry.json');
      }
      console.log(fs.readFileSync('node_modules/.cache/tool/entry.json', 'utf8'), fs.readdirSync('node_modules/.cache/tool').join());`;
    expect(run(cache)).toBe('{"n":2} entry.json\n');
    expect(readFileSync(join(m.upper!, '.cache/tool/entry.json'), 'utf8')).toBe('{"n":2}');
    expect(m.upper!.startsWith(join(base, 'uppers'))).toBe(true);
    await unmountProjection(join(project, 'node_modules'), { store });
    expect(readdirSync(join(project, 'node_modules'))).toEqual([]);
  });
});

/**
 * Run as nobody (node, in a private mount namespace): ingest, `velo mount`
 * (the server mounts through fusermount3), write through the mount, kill
 * the server, let `velo mounts` repair it, look again, `velo umount`.
 */
const NOBODY_SCRIPT = `
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
const [node, velo, home, src, dest] = process.argv.slice(2);
const env = { ...process.env, VELO_HOME: home };
const v = (...args) => execFileSync(node, [velo, ...args], { env, encoding: 'utf8' });
const tree = v('store', 'ingest', src).trim().split('\\n')[0];
const m = JSON.parse(v('mount', tree, dest, '--json'));
const p = (rel) => dest + '/' + rel;
fs.writeFileSync(p('a/x'), 'changed\\n');
fs.appendFileSync(p('a/x'), 'more\\n');
fs.writeFileSync(p('new.txt'), 'new\\n');
fs.unlinkSync(p('a/y'));
fs.mkdirSync(p('dir'));
fs.renameSync(p('new.txt'), p('dir/moved.txt'));
fs.chmodSync(p('a/x'), 0o755);
let exdev = '';
try { fs.renameSync(p('a'), p('a2')); } catch (e) { exdev = e.code; }
const look = () => ({ x: fs.readFileSync(p('a/x'), 'utf8'), mode: (fs.statSync(p('a/x')).mode & 0o777).toString(8), root: fs.readdirSync(dest).sort(), a: fs.readdirSync(p('a')).sort(), moved: fs.readFileSync(p('dir/moved.txt'), 'utf8') });
const first = look();
process.kill(m.pid, 'SIGKILL');
const mounts = v('mounts');
const second = look();
const upper = fs.readdirSync(m.upper + '/a').sort();
v('umount', dest);
console.log(JSON.stringify({ method: m.method, uid: process.getuid(), exdev, first, second, upper, mounts }));
`;

describe('as an unprivileged user', () => {
  it('velo mount gives nobody a writable copy-up mount through fusermount3 that survives a repair', () => {
    // fusermount3 opens /dev/fuse with the user's own rights; here it is 0600 root, so the
    // namespace gets a 0666 node of the same device (the usual mode on a desktop system)
    const nb = join(base, 'nobody');
    mkdirSync(join(nb, 'src/a'), { recursive: true });
    writeFileSync(join(nb, 'src/a/x'), 'x\n');
    writeFileSync(join(nb, 'src/a/y'), 'y\n');
    const checkout = checkoutForNobody(base);
    try {
      writeFileSync(join(nb, 'script.mjs'), NOBODY_SCRIPT);
      for (const d of [nb, join(nb, 'src'), join(nb, 'src/a'), join(nb, 'src/a/x'), join(nb, 'src/a/y'), join(nb, 'script.mjs')]) {
        chownSync(d, checkout.uid, checkout.gid);
      }
      const [node, velo] = checkout.veloCommand;
      const shell = 'set -e; mknod "$1/fuse" c 10 229; chmod 666 "$1/fuse"; mount --bind "$1/fuse" /dev/fuse; shift; exec runuser -u nobody -- "$@"';
      const out = execFileSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', shell, 'sh', nb,
        node, join(nb, 'script.mjs'), node, velo, join(nb, 'home'), join(nb, 'src'), join(nb, 'dest')], {
        env: { PATH: process.env.PATH, HOME: nb },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 60_000,
      });
      const r = JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, unknown>;
      const look = { x: 'changed\nmore\n', mode: '755', root: ['a', 'dir'], a: ['x'], moved: 'new\n' };
      expect(r).toMatchObject({ method: 'fuse-rw', uid: checkout.uid, exdev: 'EXDEV', first: look, second: look, upper: ['.velo.wh.y', 'x'] });
      expect(r.mounts).toMatch(/remounted|fuse-rw/);
    } finally {
      checkout.release();
    }
  });
});
