/**
 * One copy on disk: after velo stores what uv installed, uv's own cache
 * holds hardlinks to the store's objects — one inode for uv's cache, the
 * store, velo's environments and plain uv's environments. uv keeps
 * accepting its cache: a plain `uv sync` links from it without downloading,
 * `uv cache prune` works, and a later sync still does.
 */
import { cpSync, lstatSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { copyProject, runPython, runUvCli, veloUv, type PyIndex } from '../fixtures/uv/harness.js';
import { tempDirs } from './support/tmp.js';
import { startUvIndexSandbox, stopUvIndexSandbox, uvSandboxEnv } from './support/uvIndexSandbox.js';

const tmp = tempDirs('velo-uv-onecopy-');
let root: string;
let python: string;
let index: PyIndex;
let veloHome: string;
const SITE = 'lib/python3.11/site-packages';

function env(cache: string): NodeJS.ProcessEnv {
  return uvSandboxEnv({ root, python, veloHome, index }, cache);
}

beforeAll(async () => {
  root = tmp();
  ({ python, veloHome, index } = await startUvIndexSandbox(root));
});

afterAll(() => stopUvIndexSandbox(index, root));

/** Every file named `rel` under some archive-v0/<id>/ of the cache. */
function inCache(cache: string, rel: string): string[] {
  const archive = join(root, 'caches', cache, 'archive-v0');
  return readdirSync(archive)
    .map((id) => join(archive, id, rel))
    .filter((p) => {
      try {
        return lstatSync(p).isFile();
      } catch {
        return false;
      }
    });
}

describe('velo uv sync keeps one copy of what uv unpacks', () => {
  test("uv's cache links the store's objects, and uv keeps using it", async () => {
    const velo = copyProject('app-two', join(root, 'velo'));
    expect(runUvCli(['lock'], env('lock'), velo).code).toBe(0);
    const r = veloUv(['sync', '--locked', '--json'], env('shared'), velo);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { ingested: number; uvCacheLinked: { files: number; bytes: number } };
    expect(j.ingested).toBe(3);
    expect(j.uvCacheLinked.files).toBeGreaterThan(5);
    expect(j.uvCacheLinked.bytes).toBeGreaterThan(0);

    // the cache's unpacked file, velo's environment's file and the store object are one inode
    const mine = statSync(join(velo, '.venv', SITE, 'velo_greet', 'cli.py'));
    const cached = inCache('shared', 'velo_greet/cli.py');
    expect(cached).toHaveLength(1);
    const c = statSync(cached[0]!);
    expect(c.ino).toBe(mine.ino);
    expect(c.mode & 0o777).toBe(0o444); // the object's mode (read-only), and its fixed mtime
    expect(c.mtimeMs).toBe(mine.mtimeMs);
    // the C extension too
    const so = readdirSync(join(velo, '.venv', SITE, 'velo_speedups')).find((n) => n.endsWith('.so'))!;
    expect(statSync(inCache('shared', `velo_speedups/${so}`)[0]!).ino).toBe(statSync(join(velo, '.venv', SITE, 'velo_speedups', so)).ino);

    // plain uv, same cache: links from it (no download), and gets the same inode
    await index.clear();
    const plain = copyProject('app-two', join(root, 'plain'));
    cpSync(join(velo, 'uv.lock'), join(plain, 'uv.lock'));
    const u = runUvCli(['sync', '--locked'], env('shared'), plain);
    expect(u.code, u.stderr).toBe(0);
    expect(await index.downloads()).toEqual([]);
    expect(statSync(join(plain, '.venv', SITE, 'velo_greet', 'cli.py')).ino).toBe(mine.ino);
    const imp = runPython(join(plain, '.venv', 'bin', 'python'), 'import velo_greet, velo_data, velo_speedups; print(velo_speedups.add_all(2, 2))', env('shared'), plain);
    expect(imp.stdout.trim()).toBe('4');
    const check = runUvCli(['sync', '--locked', '--check'], env('shared'), velo);
    expect(check.code, check.stderr).toBe(0);

    // uv cache prune keeps what is in use and works; a later plain sync and velo sync still do
    const prune = runUvCli(['cache', 'prune'], env('shared'), plain);
    expect(prune.code, prune.stderr).toBe(0);
    const again = runUvCli(['sync', '--locked', '--reinstall'], env('shared'), plain);
    expect(again.code, again.stderr).toBe(0);
    expect(runPython(join(plain, '.venv', 'bin', 'python'), 'import velo_greet; print(velo_greet.greet("x"))', env('shared'), plain).stdout).toBe('hello, x\n');
    const clean = runUvCli(['cache', 'clean', 'velo-greet'], env('shared'), plain);
    expect(clean.code, clean.stderr).toBe(0);
    // the store's object survived uv removing its cache entry
    expect(statSync(join(velo, '.venv', SITE, 'velo_greet', 'cli.py')).nlink).toBeGreaterThanOrEqual(2);
    const v = veloUv(['sync', '--locked', '--reinstall', '--json'], env('shared'), velo);
    expect(v.code, v.stderr).toBe(0);
    expect(runPython(join(velo, '.venv', 'bin', 'python'), 'import velo_greet; print(velo_greet.greet("y"))', env('shared'), velo).stdout).toBe('hello, y\n');
  });
});
