import { chmodSync, mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Store } from '../src/store/store.js';
import { ingestDir } from '../src/store/addFilesFromDir.js';
import { readTree } from '../src/store/trees.js';
import { readCounters } from '../src/store/counters.js';
import { materialize } from '../src/projection/materialize.js';
import { parseTree, serializeTree } from '../src/store/treeFormat.js';
import { describeDir, asObject } from './support/treeCompare.js';
import { tempDirs } from './support/tmp.js';

const tmp = tempDirs();

/** A directory with every kind of thing a tree must carry. */
function makeSample(root: string): void {
  mkdirSync(join(root, 'pkg/lib/deep/er'), { recursive: true });
  mkdirSync(join(root, 'empty-dir'));
  writeFileSync(join(root, 'pkg/index.js'), 'module.exports = 42;\n');
  writeFileSync(join(root, 'pkg/lib/deep/er/data.json'), JSON.stringify({ a: [1, 2, 3] }));
  writeFileSync(join(root, 'empty-file'), '');
  writeFileSync(join(root, 'run.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(join(root, 'run.sh'), 0o755);
  writeFileSync(join(root, 'same-bytes-not-exec'), '#!/bin/sh\necho hi\n');
  writeFileSync(join(root, 'ünïcødé-名前-😀.txt'), 'unicode name\n');
  writeFileSync(join(root, 'n'.repeat(255)), 'long name\n');
  symlinkSync('pkg/index.js', join(root, 'rel-link'));
  symlinkSync('../nowhere/at/all', join(root, 'dangling-link'));
  symlinkSync('lib', join(root, 'pkg/dir-link'));
  const big = Buffer.alloc(3 * 1024 * 1024 + 17);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
  writeFileSync(join(root, 'pkg/lib/big.bin'), big);
}

describe('store round trip', () => {
  for (const method of ['hardlink', 'copy', 'reflink'] as const) {
    it(`ingest then materialize by ${method} gives back the same tree, byte for byte`, async () => {
      const dir = tmp();
      const src = join(dir, 'src');
      mkdirSync(src);
      makeSample(src);
      const store = Store.open(join(dir, 'store'));
      const r = await ingestDir(store, src);
      expect(r.files).toBe(8);
      expect(r.symlinks).toBe(3);
      const dest = join(dir, 'dest');
      const m = await materialize(store, r.tree, dest, { within: dirname(dest), method, noNative: true });
      expect(asObject(describeDir(dest))).toEqual(asObject(describeDir(src)));
      // reflink is not supported on ext4/tmpfs: every file falls back to copy, none fails
      if (method === 'reflink') expect(m.reflinked + m.fallbacks).toBe(8);
      if (method === 'hardlink') expect(statSync(join(dest, 'pkg/index.js')).nlink).toBeGreaterThan(1);
      if (method === 'copy') expect(statSync(join(dest, 'pkg/index.js')).nlink).toBe(1);
      store.close();
    });
  }

  it('executable and non-executable copies of the same bytes are separate objects', async () => {
    const dir = tmp();
    const src = join(dir, 'src');
    mkdirSync(src);
    makeSample(src);
    const store = Store.open(join(dir, 'store'));
    const r = await ingestDir(store, src);
    const entries = readTree(store, r.tree).entries;
    const run = entries.find((e) => e.path === 'run.sh')!;
    const plain = entries.find((e) => e.path === 'same-bytes-not-exec')!;
    expect(run.digest).toBe(plain.digest);
    expect(statSync(store.objectPath(run.digest, true)).mode & 0o777).toBe(0o555);
    expect(statSync(store.objectPath(plain.digest, false)).mode & 0o777).toBe(0o444);
    store.close();
  });

  it('dedups: two trees sharing files store each content once, and counters say so', async () => {
    const dir = tmp();
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    for (const d of [a, b]) {
      mkdirSync(join(d, 'shared'), { recursive: true });
      for (let i = 0; i < 20; i++) writeFileSync(join(d, 'shared', `f${i}.js`), `shared file ${i}\n`);
    }
    writeFileSync(join(a, 'only-a'), 'a\n');
    writeFileSync(join(b, 'only-b'), 'b\n');
    const store = Store.open(join(dir, 'store'));
    const ra = await ingestDir(store, a);
    const rb = await ingestDir(store, b);
    expect(ra.newObjects).toBe(21);
    expect(rb.newObjects).toBe(1);
    expect(ra.tree).not.toBe(rb.tree);
    const objectFiles = readdirSync(join(dir, 'store/objects'), { recursive: true, withFileTypes: true }).filter((d) => d.isFile());
    expect(objectFiles).toHaveLength(22);
    expect(readCounters(store).objects).toBe(22);
    // the same directory ingested again is the same tree
    expect((await ingestDir(store, a)).tree).toBe(ra.tree);
    store.close();
  });

  it('keeps mtimes when asked, for trees that need them (cargo target dirs)', async () => {
    const dir = tmp();
    const src = join(dir, 'src');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'sub/a'), 'a');
    writeFileSync(join(src, 'b'), 'b');
    const { utimesSync } = await import('node:fs');
    utimesSync(join(src, 'sub/a'), 1_600_000_000.123, 1_600_000_000.123);
    utimesSync(join(src, 'b'), 1_700_000_000, 1_700_000_000);
    utimesSync(join(src, 'sub'), 1_650_000_000, 1_650_000_000);
    const store = Store.open(join(dir, 'store'));
    const r = await ingestDir(store, src, { mtimes: true });
    const dest = join(dir, 'dest');
    await materialize(store, r.tree, dest, { within: dirname(dest), method: 'copy', noNative: true });
    expect(asObject(describeDir(dest, { mtimes: true }))).toEqual(asObject(describeDir(src, { mtimes: true })));
    store.close();
  });

  it('the tree format is canonical and rejects corrupt input', () => {
    const entries = [
      { path: 'b', kind: 'file' as const, size: 1, digest: 'ab'.repeat(32) },
      { path: 'a/x', kind: 'symlink' as const, target: '../b' },
    ];
    const one = serializeTree(entries);
    const two = serializeTree([...entries].reverse());
    expect(one.equals(two)).toBe(true);
    const parsed = parseTree(one);
    expect(parsed.entries.map((e) => e.path)).toEqual(['', 'a', 'b', 'a/x']);
    const bad = Buffer.from(one);
    bad.writeUInt32LE(999, 32 + 64 * 1 + 4); // parent out of range
    expect(() => parseTree(bad)).toThrow(/corrupt tree/);
    expect(() => parseTree(one.subarray(0, one.length - 1))).toThrow(/corrupt tree/);
    expect(() => serializeTree([{ path: 'a/../b', kind: 'dir' }])).toThrow(/invalid path/);
  });
});
