// The native addon's FUSE server: a real mount of a real tree, compared with
// a materialized copy of the same tree — with reads served by FUSE
// passthrough (as root, Linux >= 6.9) and by splice with zero-message opens.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync, chmodSync, closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync,
  readFileSync, readSync, rmSync, statfsSync, unlinkSync, utimesSync, writeFileSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeModulesEntries, objectPath, writeObjects, OBJECT_MTIME_S } from '../native/test-support/syntheticTree.mjs';
import { writeTree } from '../native/test-support/treeWriter.mjs';
import { catDigest, listTree } from './support/treeListing.js';

const repo = join(import.meta.dirname, '..');
const addonPath = join(repo, 'native', 'build', 'velo_native.node');

interface MountHandle { mountpoint: string }
interface MountStats { passthrough: boolean; opens: number; backingOpens: number; reads: number }
interface Addon {
  materialize(tree: Uint8Array, objectsDir: string, destDir: string, method: string, threads?: number): Promise<{ files: number }>;
  mount(treePath: string, objectsDir: string, mountpoint: string,
    opts?: { threads?: number; allowOther?: boolean; debug?: boolean; passthrough?: boolean; onExit?: () => void }): MountHandle;
  unmount(handle: MountHandle): boolean;
  mountStats(handle: MountHandle): MountStats | null;
}
interface Entry { path: string; kind: 'dir' | 'file' | 'symlink'; exec?: boolean; size?: number; digest?: string; data?: Buffer }

let addon: Addon;
let base: string;
let objects: string;
let treeFile: string;
let entries: Entry[];
let copy: string;

const isMounted = (dir: string): boolean =>
  readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === dir);

function freshMountpoint(name: string): string {
  const d = join(base, name);
  mkdirSync(d);
  return d;
}

beforeAll(async () => {
  if (!existsSync(addonPath)) {
    const r = spawnSync(process.execPath, [join(repo, 'native', 'build.mjs')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`native build failed: ${r.stderr}`);
  }
  addon = createRequire(import.meta.url)(addonPath) as Addon;
  base = mkdtempSync(join(tmpdir(), 'velo-native-fuse-'));
  objects = join(base, 'objects');
  mkdirSync(objects);
  entries = nodeModulesEntries({ packages: 60, mtimes: true }) as Entry[];
  writeObjects(objects, entries);
  const tree = writeTree(entries, { mtimes: true });
  treeFile = join(base, 'tree');
  writeFileSync(treeFile, tree);
  copy = freshMountpoint('copy');
  await addon.materialize(tree, objects, copy, 'copy', 2);
});

afterAll(() => {
  if (base) {
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const dir = line.split(' ')[4];
      if (dir?.startsWith(base)) spawnSync('umount', ['-l', dir]);
    }
    rmSync(base, { recursive: true, force: true });
  }
});

const MODES = [
  { reads: 'FUSE passthrough', passthrough: true },
  { reads: 'splice, with zero-message opens', passthrough: false },
];

describe.each(MODES)('a mounted tree, reads by $reads', ({ passthrough }) => {
  let mnt: string;
  let handle: MountHandle | undefined;

  beforeAll(() => {
    mnt = freshMountpoint(passthrough ? 'mnt-pt' : 'mnt-splice');
    handle = addon.mount(treeFile, objects, mnt, { threads: 4, passthrough });
  });

  afterAll(() => {
    if (handle) addon.unmount(handle);
  });

  it('is mounted read-only as fuse.velo', () => {
    const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === mnt)!;
    expect(line).toMatch(/ - fuse\.velo velo /);
    expect(line.split(' ')[5]).toMatch(/^ro\b/);
  });

  it('looks exactly like a materialized copy: listing, modes, nlink, sizes, mtimes, bytes, symlinks', () => {
    const mounted = listTree(mnt);
    const copied = listTree(copy);
    expect(mounted.size).toBe(entries.length - 1);
    expect([...mounted.keys()]).toEqual([...copied.keys()]);
    for (const [path, seen] of mounted) expect(`${path}: ${seen}`).toBe(`${path}: ${copied.get(path)}`);
    expect(lstatSync(mnt, { bigint: true }).mtimeNs).toBe(lstatSync(copy, { bigint: true }).mtimeNs);
  });

  it('answers lookups of missing names with ENOENT and reports statfs', () => {
    expect(() => lstatSync(join(mnt, 'node_modules', 'no-such-package'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => lstatSync(join(mnt, 'node_modules', 'pkg-1', 'index.js', 'x'))).toThrow(expect.objectContaining({ code: 'ENOTDIR' }));
    const fs = statfsSync(mnt);
    expect(fs.files).toBe(entries.length);
    expect(fs.bavail).toBe(0);
  });

  it('refuses every write with EROFS', () => {
    const file = join(mnt, 'node_modules', 'pkg-1', 'index.js');
    const erofs = expect.objectContaining({ code: 'EROFS' });
    expect(() => writeFileSync(join(mnt, 'new.txt'), 'x')).toThrow(erofs);
    expect(() => openSync(file, 'r+')).toThrow(erofs);
    expect(() => mkdirSync(join(mnt, 'd'))).toThrow(erofs);
    expect(() => unlinkSync(file)).toThrow(erofs);
    expect(() => chmodSync(file, 0o777)).toThrow(erofs);
    expect(() => utimesSync(file, 1, 1)).toThrow(erofs);
  });

  it('serves many parallel readers the right bytes', async () => {
    const files = entries.filter((e) => e.kind === 'file');
    const reads = await Promise.all(files.map((e) => readFile(join(mnt, e.path))));
    reads.forEach((buf, k) => expect(buf.equals(files[k]!.data!)).toBe(true));
    const digest = (dir: string) => catDigest(dir);
    const want = await digest(copy);
    const got = await Promise.all(Array.from({ length: 8 }, () => digest(mnt)));
    expect(got).toEqual(Array(8).fill(want));
  }, 30_000);

  it('lets node require packages from it', () => {
    const script = `
      const names = require('fs').readdirSync(process.argv[1]).filter((n) => n.startsWith('pkg-'));
      let sum = 0;
      for (const n of names) sum += require(process.argv[1] + '/' + n).lib;
      console.log(names.length, sum, require(process.argv[1] + '/@scope10/pkg-10').name);`;
    const out = execFileSync(process.execPath, ['-e', script, join(mnt, 'node_modules')], { encoding: 'utf8' });
    const pkgs = Array.from({ length: 60 }, (_, p) => p).filter((p) => p % 10 !== 0);
    expect(out.trim()).toBe(`${pkgs.length} ${pkgs.reduce((s, p) => s + p * 100, 0)} @scope10/pkg-10`);
    const cli = execFileSync(join(mnt, 'node_modules', '.bin', 'cli-5'), { encoding: 'utf8' });
    expect(cli.trim()).toBe('pkg-5');
  });

  it('carries a writable kernel overlay whose writes never reach the store', () => {
    const [upper, work, merged] = ['upper', 'work', 'merged'].map((d) => freshMountpoint(`ovl-${d}-${passthrough ? 'pt' : 'splice'}`));
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${mnt},upperdir=${upper},workdir=${work}`, merged!]);
    try {
      const readme = entries.find((e) => e.path === 'node_modules/pkg-1/README.md')!;
      appendFileSync(join(merged!, readme.path), 'edited');
      writeFileSync(join(merged!, 'node_modules/.cache'), 'new');
      rmSync(join(merged!, 'node_modules/pkg-2/LICENSE'));
      chmodSync(join(merged!, 'node_modules/pkg-3/index.js'), 0o600);
      expect(readFileSync(join(merged!, readme.path), 'utf8').endsWith('edited')).toBe(true);
      expect(existsSync(join(merged!, 'node_modules/pkg-2/LICENSE'))).toBe(false);
      expect(readFileSync(join(upper!, readme.path), 'utf8').endsWith('edited')).toBe(true);
      expect(readFileSync(join(upper!, 'node_modules/.cache'), 'utf8')).toBe('new');
      expect(readFileSync(objectPath(objects, readme)).equals(readme.data!)).toBe(true);
      expect(readFileSync(join(mnt, readme.path)).equals(readme.data!)).toBe(true);
      expect(existsSync(join(mnt, 'node_modules/pkg-2/LICENSE'))).toBe(true);
    } finally {
      execFileSync('umount', [merged!]);
    }
  });

  it('maps files into memory (mmap) with the right bytes', () => {
    const big = entries.filter((e) => e.kind === 'file').sort((a, b) => b.size! - a.size!)[0]!;
    const script = 'import mmap, sys, hashlib\nwith open(sys.argv[1], "rb") as f:\n    m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)\n    print(hashlib.sha256(m[:]).hexdigest())';
    const got = execFileSync('python3', ['-c', script, join(mnt, big.path)], { encoding: 'utf8' }).trim();
    expect(got).toBe(createHash('sha256').update(big.data!).digest('hex'));
  });

  it(passthrough ? 'serves no read request: the kernel reads the objects itself' : 'serves reads itself and is never asked to open a file', () => {
    const files = entries.filter((e) => e.kind === 'file');
    for (const e of files) expect(readFileSync(join(mnt, e.path)).equals(e.data!)).toBe(true);
    const st = addon.mountStats(handle!)!;
    expect(st.passthrough).toBe(passthrough);
    if (passthrough) {
      expect(st.reads).toBe(0);
      expect(st.opens).toBeGreaterThanOrEqual(files.length);
      // one backing file per file entry at most: reopening reuses it
      expect(st.backingOpens).toBeGreaterThan(0);
      expect(st.backingOpens).toBeLessThanOrEqual(files.length);
    } else {
      expect(st.opens).toBe(0);
      expect(st.reads).toBeGreaterThan(0);
    }
  });
});

describe('passthrough', () => {
  it('keeps every open of one file on one backing file: concurrent and repeated opens all read right', () => {
    const mp = freshMountpoint('mnt-pt-opens');
    const h = addon.mount(treeFile, objects, mp, { passthrough: true });
    try {
      const e = entries.find((x) => x.path === 'node_modules/pkg-3/README.md')!;
      const path = join(mp, e.path);
      const fds = Array.from({ length: 8 }, () => openSync(path, 'r'));
      const before = addon.mountStats(h)!.backingOpens;
      for (const fd of fds) {
        const buf = Buffer.alloc(e.size!);
        expect(readSync(fd, buf, 0, buf.length, 0)).toBe(e.size);
        expect(buf.equals(e.data!)).toBe(true);
      }
      for (const fd of fds) closeSync(fd);
      for (let i = 0; i < 5; i++) expect(readFileSync(path).equals(e.data!)).toBe(true);
      const st = addon.mountStats(h)!;
      expect(st).toMatchObject({ passthrough: true, reads: 0 });
      expect(st.backingOpens).toBe(before); // registered once, at the first open
      expect(st.opens).toBe(8 + 5);
    } finally {
      addon.unmount(h);
    }
  });

  it('is chosen by the tree when not asked: on for large files, off for many small ones', () => {
    const own = join(base, 'objects-large');
    mkdirSync(own);
    const large = [
      { path: '', kind: 'dir' },
      ...[0, 1, 2].map((k) => {
        const data = Buffer.alloc(512 * 1024 + k, 97 + k);
        return { path: `lib${k}.rlib`, kind: 'file', size: data.length, digest: createHash('sha256').update(data).digest('hex'), data };
      }),
    ] as Entry[];
    writeObjects(own, large);
    writeFileSync(join(base, 'tree-large'), writeTree(large));
    const cases: [string, string, boolean][] = [[join(base, 'tree-large'), own, true], [treeFile, objects, false]];
    for (const [tree, objs, want] of cases) {
      const mp = freshMountpoint(`mnt-auto-${want}`);
      const h = addon.mount(tree, objs, mp);
      try {
        statfsSync(mp); // the first request waits for the kernel's INIT, which decides
        expect(addon.mountStats(h)!.passthrough).toBe(want);
        if (want) expect(readFileSync(join(mp, 'lib1.rlib')).equals(large[2]!.data!)).toBe(true);
      } finally {
        addon.unmount(h);
      }
    }
  });
});

describe('the object guard on a mount', () => {
  it('refuses to serve an object edited in place (EIO)', () => {
    const own = join(base, 'objects-guard');
    mkdirSync(own);
    const local = nodeModulesEntries({ packages: 2 }) as Entry[];
    writeObjects(own, local);
    writeFileSync(join(base, 'tree-guard'), writeTree(local));
    const victim = local.find((e) => e.path === 'node_modules/pkg-1/README.md')!;
    utimesSync(objectPath(own, victim), OBJECT_MTIME_S + 1, OBJECT_MTIME_S + 1);
    const mp = freshMountpoint('mnt-guard');
    const h = addon.mount(join(base, 'tree-guard'), own, mp);
    try {
      expect(() => readFileSync(join(mp, victim.path))).toThrow(expect.objectContaining({ code: 'EIO' }));
      expect(readFileSync(join(mp, 'node_modules/pkg-1/index.js'), 'utf8')).toContain('pkg-1');
    } finally {
      addon.unmount(h);
    }
  });
});

describe('unmounting', () => {
  it('unmounts while a file is open; the open file then fails cleanly (ENOTCONN)', () => {
    const mp = freshMountpoint('mnt-open');
    const h = addon.mount(treeFile, objects, mp);
    const fd = openSync(join(mp, 'node_modules/pkg-1/lib/f1.js'), 'r');
    const dirFd = openSync(join(mp, 'node_modules/pkg-2'), 'r');
    try {
      expect(isMounted(mp)).toBe(true);
      expect(addon.unmount(h)).toBe(true);
      expect(isMounted(mp)).toBe(false);
      expect(addon.unmount(h)).toBe(false);
      let outcome: string;
      try {
        readSync(fd, Buffer.alloc(16), 0, 16, 0);
        outcome = 'read';
      } catch (e) {
        outcome = (e as { code: string }).code;
      }
      expect(['read', 'ENOTCONN']).toContain(outcome);
    } finally {
      // close() releases the descriptor; on a dead connection it may say ENOTCONN
      for (const d of [fd, dirFd]) {
        try {
          closeSync(d);
        } catch (e) {
          expect((e as { code: string }).code).toBe('ENOTCONN');
        }
      }
    }
  });

  it('keeps a server process alive until an outside umount, then calls onExit and lets it exit', async () => {
    const mp = freshMountpoint('mnt-server');
    const script = `
      const addon = require(${JSON.stringify(addonPath)});
      addon.mount(process.argv[1], process.argv[2], process.argv[3], { onExit: () => console.log('onExit') });
      console.log('ready');`;
    const child = spawn(process.execPath, ['-e', script, treeFile, objects, mp], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => ((out += d), out.includes('ready') && resolve())));
    await new Promise((r) => setTimeout(r, 300));
    expect(child.exitCode).toBe(null);
    expect(readFileSync(join(mp, 'node_modules/pkg-1/index.js'), 'utf8')).toContain('pkg-1');
    execFileSync('umount', [mp]);
    expect(await exited).toBe(0);
    expect(out).toContain('onExit');
    expect(isMounted(mp)).toBe(false);
  }, 20_000);

  it('unmounts when the process exits with process.exit()', () => {
    const mp = freshMountpoint('mnt-exit');
    const script = `
      const addon = require(${JSON.stringify(addonPath)});
      addon.mount(process.argv[1], process.argv[2], process.argv[3]);
      require('fs').readFileSync(process.argv[3] + '/node_modules/pkg-1/index.js');
      process.exit(0);`;
    execFileSync(process.execPath, ['-e', script, treeFile, objects, mp], { timeout: 10_000 });
    expect(isMounted(mp)).toBe(false);
  });
});

describe('mount errors', () => {
  it('rejects a corrupt tree, a missing mountpoint and missing objects', () => {
    const bad = join(base, 'tree-bad');
    writeFileSync(bad, readFileSync(treeFile).subarray(0, 100));
    const mp = freshMountpoint('mnt-err');
    expect(() => addon.mount(bad, objects, mp)).toThrow(expect.objectContaining({ code: 'CORRUPT_TREE' }));
    expect(() => addon.mount(treeFile, objects, join(base, 'absent'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => addon.mount(treeFile, join(base, 'absent'), mp)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => addon.mount(join(base, 'absent'), objects, mp)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(isMounted(mp)).toBe(false);
  });
});
