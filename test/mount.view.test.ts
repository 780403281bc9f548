// The mount projection's view: a real FUSE mount (with the kernel overlay on
// top, as root) of a real store tree equals a materialized copy of that tree,
// and real programs (node, python) run from it.
import { execFileSync } from 'node:child_process';
import {
  chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestDir } from '../src/store/addFilesFromDir.js';
import { Store } from '../src/store/store.js';
import { readTree } from '../src/store/trees.js';
import { materialize } from '../src/projection/materialize.js';
import { listMounts, mountProjection, type MountResult } from '../src/mount/mount.js';
import { readMountTable } from '../src/mount/mountTable.js';
import { openMountSandbox, removeMountSandbox } from './support/mountSandbox.js';
import { catDigest, listTree } from './support/treeListing.js';

let base: string;
let store: Store;
let tree: string;
let copy: string;

/** A small project: CommonJS packages, a bin, a python package, odd entries. */
function makeFixture(root: string): void {
  const w = (rel: string, data: string | Buffer, mode?: number): void => {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), data);
    if (mode) chmodSync(join(root, rel), mode);
  };
  w('node_modules/left-pad/package.json', JSON.stringify({ name: 'left-pad', version: '1.3.0', main: 'index.js' }));
  w('node_modules/left-pad/index.js', "module.exports = (s, n, c = ' ') => String(s).padStart(n, c);\n");
  w('node_modules/@scope/util/package.json', JSON.stringify({ name: '@scope/util', version: '2.0.0', main: 'lib/index.js' }));
  w('node_modules/@scope/util/lib/index.js', "exports.twice = (x) => x * 2;\nexports.data = require('./data.json');\n");
  w('node_modules/@scope/util/lib/data.json', JSON.stringify({ answer: 21 }));
  w('node_modules/uses-both/package.json', JSON.stringify({ name: 'uses-both', version: '0.1.0', bin: { 'uses-both': 'bin/cli.js' } }));
  w('node_modules/uses-both/index.js', "const pad = require('left-pad'); const u = require('@scope/util');\nmodule.exports = () => pad(u.twice(u.data.answer), 5, '0');\n");
  w('node_modules/uses-both/bin/cli.js', "#!/usr/bin/env node\nconsole.log('cli says ' + require('..')());\n", 0o755);
  mkdirSync(join(root, 'node_modules/.bin'));
  symlinkSync('../uses-both/bin/cli.js', join(root, 'node_modules/.bin/uses-both'));
  symlinkSync('../nowhere', join(root, 'node_modules/.bin/dangling'));
  symlinkSync('/etc/hostname', join(root, 'abs-link'));
  w('app.js', "console.log(require('uses-both')(), require('left-pad')('x', 3, '-'));\n");
  // app.js is CommonJS whatever a package.json above the test's directory says
  w('package.json', JSON.stringify({ name: 'velo-mount-view-fixture', private: true, type: 'commonjs' }));
  w('site-packages/velo_demo/__init__.py', 'from .mod import answer\n');
  w('site-packages/velo_demo/mod.py', 'def answer():\n    return 6 * 7\n');
  w('empty-file', '');
  mkdirSync(join(root, 'empty-dir'));
  const big = Buffer.alloc(2 * 1024 * 1024 + 123);
  for (let i = 0; i < big.length; i++) big[i] = (i * 131 + (i >> 9)) & 0xff;
  w('data/big.bin', big);
}

beforeAll(async () => {
  ({ base, store } = openMountSandbox('velo-mount-view-'));
  const src = join(base, 'src');
  makeFixture(src);
  tree = (await ingestDir(store, src, { mtimes: true })).tree;
  copy = join(base, 'copy');
  await materialize(store, tree, copy, { within: dirname(copy), method: 'copy' });
});

afterAll(() => removeMountSandbox(base, store));

describe('a mounted tree with a writable overlay', () => {
  let m: MountResult;
  let dest: string;

  beforeAll(async () => {
    dest = join(base, 'overlay');
    m = await mountProjection(store, tree, dest, { within: dirname(dest) });
  });

  it('is an overlay over velo\'s FUSE view, served by a live process, recorded and registered', () => {
    expect(m.method).toBe('overlay');
    expect(m.readOnlyReason).toBeUndefined();
    const table = readMountTable();
    const top = table.filter((e) => e.mountPoint === dest).at(-1)!;
    expect(top.fsType).toBe('overlay');
    const lower = /lowerdir=([^,]+)/.exec(top.superOptions)![1]!;
    expect(table.find((e) => e.mountPoint === lower)?.fsType).toBe('fuse.velo');
    expect(() => process.kill(m.pid, 0)).not.toThrow();
    const listed = listMounts(store);
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ dest, tree, method: 'overlay', state: 'mounted', pid: m.pid, upper: m.upper });
    const project = store.index.prepare('SELECT * FROM projects WHERE path = ?').get(dest) as { projection: string; tree: string };
    expect(project).toMatchObject({ projection: 'mount', tree });
  });

  it('looks exactly like a materialized copy: listing, modes, nlink, sizes, mtimes, bytes, symlinks', () => {
    const mounted = listTree(dest);
    const copied = listTree(copy);
    expect([...mounted.keys()]).toEqual([...copied.keys()]);
    for (const [path, seen] of mounted) expect(`${path}: ${seen}`).toBe(`${path}: ${copied.get(path)}`);
  });

  it('lets node require packages from its node_modules and run a bin', () => {
    const outp = execFileSync(process.execPath, [join(dest, 'app.js')], { encoding: 'utf8' });
    expect(outp.trim()).toBe('00042 --x');
    expect(execFileSync(join(dest, 'node_modules/.bin/uses-both'), { encoding: 'utf8' }).trim()).toBe('cli says 00042');
  });

  it('lets python import from it, and python\'s bytecode cache lands in the upper layer', () => {
    const env = { ...process.env };
    delete env.PYTHONDONTWRITEBYTECODE;
    const outp = execFileSync('python3', ['-c', 'import sys; sys.path.insert(0, sys.argv[1]); import velo_demo; print(velo_demo.answer(), velo_demo.__file__)', join(dest, 'site-packages')], {
      encoding: 'utf8',
      env,
    });
    expect(outp.trim()).toBe(`42 ${join(dest, 'site-packages/velo_demo/__init__.py')}`);
    const cache = join(m.upper!, 'site-packages/velo_demo/__pycache__');
    expect(readdirSync(cache).some((n) => n.startsWith('mod.') && n.endsWith('.pyc'))).toBe(true);
    expect(existsSync(join(copy, 'site-packages/velo_demo/__pycache__'))).toBe(false);
  });

  it('serves many parallel readers the right bytes', async () => {
    const files = [...listTree(copy)].filter(([, v]) => v.startsWith('file')).map(([k]) => k);
    const want = await Promise.all(files.map((f) => readFile(join(copy, f))));
    const rounds = await Promise.all(Array.from({ length: 16 }, () => Promise.all(files.map((f) => readFile(join(dest, f))))));
    for (const got of rounds) got.forEach((buf, k) => expect(buf.equals(want[k]!)).toBe(true));
    const digest = (dir: string) => catDigest(dir, '-path ./site-packages -prune -o -type f -print');
    const expected = await digest(copy);
    const got = await Promise.all(Array.from({ length: 8 }, () => digest(dest)));
    expect(got).toEqual(Array(8).fill(expected));
  }, 30_000);
});

describe('a read-only mount (no overlay)', () => {
  it('is the FUSE view itself at dest, equal to the copy (root included), and refuses writes with EROFS', async () => {
    const dest = join(base, 'readonly');
    const m = await mountProjection(store, tree, dest, { within: dirname(dest), overlay: false });
    expect(m.method).toBe('fuse-ro');
    expect(m.upper).toBeUndefined();
    expect(m.readOnlyReason).toMatch(/read-only/);
    expect(readMountTable().filter((e) => e.mountPoint === dest).at(-1)?.fsType).toBe('fuse.velo');
    const mounted = listTree(dest);
    const copied = listTree(copy);
    expect([...mounted.keys()]).toEqual([...copied.keys()]);
    for (const [path, seen] of mounted) expect(`${path}: ${seen}`).toBe(`${path}: ${copied.get(path)}`);
    // the root carries the tree's own mtime, to the nanosecond
    expect(lstatSync(dest, { bigint: true }).mtimeNs).toBe(readTree(store, tree).entries[0]!.mtimeNs);
    expect(() => writeFileSync(join(dest, 'new.txt'), 'x')).toThrow(expect.objectContaining({ code: 'EROFS' }));
    expect(execFileSync(process.execPath, [join(dest, 'app.js')], { encoding: 'utf8' }).trim()).toBe('00042 --x');
  });
});
