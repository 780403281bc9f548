import { chmodSync, existsSync, lstatSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Store } from '../src/store/store.js';
import { hashBuffer } from '../src/store/hash.js';
import { OBJECT_MTIME_MS } from '../src/store/layout.js';
import { loadNative } from '../src/native.js';
import { writeObjectBatch } from '../src/store/writeObjectBatch.js';
import { discardStaged, ObjectWriter, type StagedObject } from '../src/store/objectWriter.js';
import { verifyStore } from '../src/store/verify.js';
import { tempDirs } from './support/tmp.js';

const tmp = tempDirs();

function held(text: string, exec = false): { digest: string; exec: boolean; data: Buffer } {
  const data = Buffer.from(text);
  return { digest: hashBuffer(data), exec, data };
}

describe('writing a batch of in-memory objects', () => {
  it('the native addon has writeObjects (else the batch silently takes the slow path)', () => {
    expect(typeof loadNative()?.writeObjects).toBe('function');
  });

  it('writes each object under its final name with its mode and mtime, names nothing in tmp/, and counts only what it created', async () => {
    const home = join(tmp(), 'store');
    const store = Store.open(home);
    const objs = [held('console.log(1)\n'), held('#!/usr/bin/env node\n', true), held(''), held('x'.repeat(200_000))];
    const first = writeObjectBatch(store, objs);
    expect(first.map((r) => r.created)).toEqual([true, true, true, true]);
    for (const o of objs) {
      const path = store.objectPath(o.digest, o.exec);
      const st = lstatSync(path);
      expect(st.mode & 0o777).toBe(o.exec ? 0o555 : 0o444);
      expect(st.mtimeMs).toBe(OBJECT_MTIME_MS);
      expect(readFileSync(path).equals(o.data)).toBe(true);
    }
    expect(readdirSync(join(home, 'tmp'))).toEqual([]);
    // again, plus one new: only the new one is created
    const again = writeObjectBatch(store, [...objs, held('new')]);
    expect(again.map((r) => r.created)).toEqual([false, false, false, false, true]);
    expect(store.pendingCounts.objects).toBe(5);
    store.close();
    const report = await verifyStore(Store.open(home));
    expect(report.problems).toEqual([]);
    expect(report.objects).toBe(5);
  });

  it('a damaged file holding an object name is quarantined and the object written again', () => {
    const home = join(tmp(), 'store');
    const store = Store.open(home);
    const o = held('module.exports = 42;\n');
    writeObjectBatch(store, [o]);
    const path = store.objectPath(o.digest, false);
    chmodSync(path, 0o644);
    writeFileSync(path, 'module.exports = "tampered and longer";\n');
    const [r] = writeObjectBatch(store, [o]);
    expect(r!.created).toBe(true);
    expect(readFileSync(path).equals(o.data)).toBe(true);
    expect(lstatSync(path).mtimeMs).toBe(OBJECT_MTIME_MS);
    expect(readdirSync(join(home, 'quarantine'))).toHaveLength(1);
    store.close();
  });

  it('a name that is not an object name is refused before anything is written', () => {
    const home = join(tmp(), 'store');
    Store.open(home).close();
    const native = loadNative()!;
    const data = [Buffer.from('x')];
    for (const name of ['../x', 'ab/../../x', 'ab/cd/ef', 'AB/cdef', 'ab', 'ab/']) {
      expect(() => native.writeObjects!(join(home, 'objects'), [name], data, new Uint8Array([0]), 1), name).toThrow(/object name/);
    }
    expect(existsSync(join(home, 'x'))).toBe(false);
    expect(readdirSync(join(home, 'objects'))).toEqual([]);
  });
});

describe('memory bounds of tarball ingestion', () => {
  it('contents over the writer’s memory limit stream to a temporary file, not memory', () => {
    const home = join(tmp(), 'store');
    const store = Store.open(home);
    const data = Buffer.alloc(3 * 1024 * 1024, 'a');
    const chunks = [data.subarray(0, 1 << 20), data.subarray(1 << 20)];
    const write = (limit?: number): StagedObject => {
      const w = new ObjectWriter(store, false, data.length, undefined, limit);
      for (const c of chunks) w.update(c);
      return w.hold();
    };
    const inMemory = write(); // the default limit (8 MiB): held in memory
    expect(inMemory.data?.length).toBe(data.length);
    const streamed = write(1024 * 1024);
    expect(streamed.data).toBeUndefined();
    expect(streamed.tmp).toBeDefined();
    expect(readFileSync(streamed.tmp!).equals(data)).toBe(true);
    expect(streamed.digest).toBe(inMemory.digest);
    // an entry whose header understates its size switches once past the limit
    const w = new ObjectWriter(store, false, 10, undefined, 1024 * 1024);
    for (const c of chunks) w.update(c);
    expect(w.hold().tmp).toBeDefined();
    discardStaged([streamed]);
    store.close();
  });

  it('the addon caps malloc arenas where the C library is glibc', () => {
    const glibc = Boolean((process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime);
    expect(loadNative()?.limitMallocArenas?.(8)).toBe(glibc);
    expect(() => loadNative()?.limitMallocArenas?.(0)).toThrow(/positive integer/);
  });
});
