/**
 * What the cargo tests share about the fixture workspace and the store its
 * targets go into: the units `cargo build` builds, opening the sandbox's
 * store for a moment, the store objects being intact, and the demo binary
 * of a second clone being the first one's.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { artifacts, REPO_ROOT, type ArtifactMessage, type CargoSandbox } from '../../fixtures/cargo/harness.js';

const dist = (p: string): string => join(REPO_ROOT, 'dist', p);
const { Store } = (await import(dist('src/store/store.js'))) as typeof import('../../src/store/store.js');
const { hashBuffer } = (await import(dist('src/store/hash.js'))) as typeof import('../../src/store/hash.js');

/** Every unit cargo builds for `cargo build` of the fixture: 10 packages, 2 build scripts. */
export const ALL_UNITS = [
  'buildinfo:custom-build',
  'buildinfo:lib',
  'geom:lib',
  'mathx:lib',
  'render:lib',
  'shape_derive:proc-macro',
  'shapes:lib',
  'textkit:lib',
  'tinyfmt:custom-build',
  'tinyfmt:lib',
  'tinyhash:lib',
  'velo-demo:bin',
];

/** The units of cargo's artifact messages as `<package>:<kind>`, sorted. */
export function units(list: ArtifactMessage[]): string[] {
  return list.map((a) => `${a.pkg}:${a.kind}`).sort();
}

/** The packages cargo compiled (not fresh) in a --message-format=json run, sorted. */
export function rebuiltPackages(stdout: string): string[] {
  return artifacts(stdout)
    .filter((x) => !x.fresh)
    .map((x) => x.pkg)
    .sort();
}

/** Runs fn with the sandbox's store open, and closes it after. */
export function withStore<T>(sb: CargoSandbox, fn: (store: import('../../src/store/store.js').Store) => T): T {
  const store = Store.open(sb.home);
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

/** Every object in the store at home hashes to its name, is read-only with its exec bit, has the store's mtime; nothing quarantined. */
export function expectStoreObjectsIntact(home: string): void {
  const objects = join(home, 'objects');
  let checked = 0;
  for (const prefix of readdirSync(objects)) {
    for (const name of readdirSync(join(objects, prefix))) {
      const path = join(objects, prefix, name);
      const exec = name.endsWith('x');
      const digest = prefix + (exec ? name.slice(0, -1) : name);
      const st = lstatSync(path);
      expect({ path, digest: hashBuffer(readFileSync(path)), mode: st.mode & 0o777, mtime: st.mtimeMs }).toEqual({
        path,
        digest,
        mode: exec ? 0o555 : 0o444,
        mtime: 499162500 * 1000,
      });
      checked++;
    }
  }
  expect(checked).toBeGreaterThan(50);
  expect(existsSync(join(home, 'quarantine')) ? readdirSync(join(home, 'quarantine')) : []).toEqual([]);
}

/**
 * The demo binary in the second clone's target has the first one's bytes, is
 * executable (its mode as `stat` reports it) and runs.
 */
export function expectSameDemoBinary(first: string, second: string, stat: (path: string) => { mode: number }): void {
  const built = readFileSync(join(first, 'target', 'debug', 'velo-demo'));
  const got = readFileSync(join(second, 'target', 'debug', 'velo-demo'));
  expect(got.equals(built)).toBe(true);
  expect(stat(join(second, 'target', 'debug', 'velo-demo')).mode & 0o111).not.toBe(0);
  const output = execFileSync(join(second, 'target', 'debug', 'velo-demo'), { encoding: 'utf8' });
  expect(output).toContain('Segment Of Length    5');
  expect(output).toContain('4 words, 17 primes, tinyfmt table tinyfmt-generated');
}
