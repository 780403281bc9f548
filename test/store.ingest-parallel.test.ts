import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VeloError } from '../src/errors.js';
import { INLINE_LIMIT, ingestDir } from '../src/store/addFilesFromDir.js';
import { ingestFile } from '../src/store/ingestFile.js';
import { SMALL_FILE_LIMIT } from '../src/store/addFile.js';
import { Store } from '../src/store/store.js';
import { readCounters } from '../src/store/counters.js';
import { readTree } from '../src/store/trees.js';
import { materialize } from '../src/projection/materialize.js';
import { asObject, describeDir } from './support/treeCompare.js';
import { veloAsync } from './support/runVelo.js';
import { tempDirs } from './support/tmp.js';

const tmp = tempDirs('velo-ingest-par-');

/** Enough files, in enough directories, that ingest hands them to worker threads. */
function makeBigDir(root: string, files: number, tag: string, shared = ''): void {
  for (let i = 0; i < files; i++) {
    const d = join(root, `pkg${i % 40}`, i % 3 === 0 ? 'lib' : 'dist');
    mkdirSync(d, { recursive: true });
    const body = i % 97 === 0 ? '' : `// ${i % 5 === 0 ? shared || tag : tag} ${i}\n${'abcdefgh'.repeat(i % 700)}\n`;
    writeFileSync(join(d, `f${i}.js`), body);
    if (i % 50 === 0) chmodSync(join(d, `f${i}.js`), 0o755);
  }
}

/** Objects on disk, by walking objects/ (not the counters). */
function objectsOnDisk(home: string): number {
  let n = 0;
  for (const prefix of readdirSync(join(home, 'objects'))) n += readdirSync(join(home, 'objects', prefix)).length;
  return n;
}

describe('parallel ingest', () => {
  it('gives the same tree, byte for byte, as single-threaded ingest (with and without mtimes)', async () => {
    const dir = tmp();
    const src = join(dir, 'src');
    makeBigDir(src, INLINE_LIMIT + 300, 'same');
    // what a worker must carry over too: a streamed large file, unicode names, symlinks, empty dirs
    const big = Buffer.alloc(SMALL_FILE_LIMIT + 4099);
    for (let i = 0; i + 4 <= big.length; i += 4096) big.writeUInt32LE(i, i);
    writeFileSync(join(src, 'pkg1', 'big.bin'), big);
    writeFileSync(join(src, 'pkg2', 'ünïcødé-名前.js'), 'unicode\n');
    symlinkSync('../pkg1/lib/f3.js', join(src, 'pkg2', 'link'));
    symlinkSync('nowhere', join(src, 'dangling'));
    mkdirSync(join(src, 'empty'));

    for (const mtimes of [false, true]) {
      const single = Store.open(join(dir, `single-${mtimes}`));
      const parallel = Store.open(join(dir, `parallel-${mtimes}`));
      const a = await ingestDir(single, src, { threads: 1, mtimes });
      const b = await ingestDir(parallel, src, { threads: 4, mtimes });
      expect(a.threads).toBe(0);
      expect(b.threads).toBe(4);
      expect(b.tree).toBe(a.tree);
      expect({ ...b, threads: 0 }).toEqual(a);
      expect(readCounters(parallel).objects).toBe(readCounters(single).objects);
      expect(readCounters(parallel).object_bytes).toBe(readCounters(single).object_bytes);
      expect(objectsOnDisk(parallel.home)).toBe(b.newObjects);
      expect(readdirSync(join(parallel.home, 'tmp'))).toEqual([]);
      if (!mtimes) {
        // the tree really describes the directory: lay it out and compare
        const dest = join(dir, 'dest');
        await materialize(parallel, b.tree, dest, { within: dirname(dest), method: 'copy', noNative: true });
        expect(asObject(describeDir(dest))).toEqual(asObject(describeDir(src)));
        const bigEntry = readTree(parallel, b.tree).entries.find((e) => e.path === 'pkg1/big.bin')!;
        expect(statSync(parallel.objectPath(bigEntry.digest, false)).mode & 0o777).toBe(0o444);
        // a second ingest finds everything there
        const again = await ingestDir(parallel, src, { threads: 4 });
        expect(again).toMatchObject({ tree: a.tree, newObjects: 0, newBytes: 0, threads: 4 });
      }
      single.close();
      parallel.close();
    }
  });

  it('small trees stay on the calling thread', async () => {
    const dir = tmp();
    makeBigDir(join(dir, 'src'), 20, 'small');
    const store = Store.open(join(dir, 'store'));
    const r = await ingestDir(store, join(dir, 'src'), { threads: 4 });
    expect(r).toMatchObject({ files: 20, threads: 0, newObjects: 20 });
    store.close();
  });

  it('two processes ingesting overlapping directories at once count every new object exactly once', async () => {
    const dir = tmp();
    const home = join(dir, 'store');
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    // a fifth of each directory's files have the same bytes in both
    const each = INLINE_LIMIT + 400;
    makeBigDir(a, each, 'only-a', 'shared');
    makeBigDir(b, each, 'only-b', 'shared');
    const env = { VELO_HOME: home, VELO_THREADS: '4' };
    const runs = await Promise.all([a, b].map((d) => veloAsync(['store', 'ingest', d, '--json'], env)));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const results = runs.map((r) => JSON.parse(r.stdout) as { tree: string; newObjects: number; newBytes: number; threads: number });
    for (const r of results) expect(r.threads).toBe(4);

    // what a single-threaded ingest of both, one after the other, stores
    const ref = Store.open(join(dir, 'ref'));
    const ra = await ingestDir(ref, a, { threads: 1 });
    const rb = await ingestDir(ref, b, { threads: 1 });
    expect(results.map((r) => r.tree)).toEqual([ra.tree, rb.tree]);
    const unique = ra.newObjects + rb.newObjects;
    expect(rb.newObjects).toBeLessThan(each - each / 10); // the shared files were there already

    expect(results[0]!.newObjects + results[1]!.newObjects).toBe(unique);
    expect(results[0]!.newBytes + results[1]!.newBytes).toBe(ra.newBytes + rb.newBytes);
    const store = Store.open(home);
    expect(readCounters(store)).toMatchObject({ objects: unique, object_bytes: ra.newBytes + rb.newBytes });
    expect(objectsOnDisk(home)).toBe(unique);
    expect(readdirSync(join(home, 'tmp'))).toEqual([]);
    store.close();
    ref.close();
  });

  it('a FIFO in the middle of a big directory is refused by name, leaving nothing in tmp/ and the counters right', async () => {
    const dir = tmp();
    const src = join(dir, 'src');
    // the root's own files are found first and start the workers; the FIFO comes later in the walk
    mkdirSync(src);
    for (let i = 0; i < INLINE_LIMIT + 200; i++) writeFileSync(join(src, `top${i}.js`), `top ${i}\n${'y'.repeat(i)}\n`);
    makeBigDir(join(src, 'deep'), 800, 'deep');
    const fifo = join(src, 'deep', 'pkg7', 'lib', 'pipe');
    execFileSync('mkfifo', [fifo]);
    const store = Store.open(join(dir, 'store'));
    const err = await ingestDir(store, src, { threads: 4 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(VeloError);
    expect((err as VeloError).code).toBe('UNSUPPORTED_FILE');
    expect((err as VeloError).message).toContain(fifo);
    expect((err as VeloError).message).toMatch(/a FIFO/);
    expect(readdirSync(join(store.home, 'tmp'))).toEqual([]);
    // the batches already with a worker when the walk reached the FIFO were
    // finished: their objects are complete, in the store, and counted
    expect(objectsOnDisk(store.home)).toBeGreaterThan(0);
    expect(readCounters(store).objects).toBe(objectsOnDisk(store.home));
    store.close();
  });

  it('a name that became a FIFO or a symlink after the walk is refused, never opened for reading', async () => {
    const dir = tmp();
    const store = Store.open(join(dir, 'store'));
    const fifo = join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    // without O_NONBLOCK this open would wait for a writer forever
    await expect(ingestFile(store, fifo, false)).rejects.toThrow(/stopped being a regular file/);
    writeFileSync(join(dir, 'real.js'), 'real\n');
    symlinkSync(join(dir, 'real.js'), join(dir, 'link.js'));
    await expect(ingestFile(store, join(dir, 'link.js'), false)).rejects.toThrow(/stopped being a regular file/);
    expect(readdirSync(join(store.home, 'tmp'))).toEqual([]);
    store.close();
  });
});
