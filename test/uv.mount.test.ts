/**
 * velo uv sync --projection mount, against real uv, a real python and a
 * real FUSE mount with its overlay: python imports from the mounted
 * environment, uv accepts it as in sync, writes (pip, edits, new files) land
 * in the mount's upper layer and never in the store; switching back to the
 * link projection, and the one-line fallback when FUSE is unavailable.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, cpSync, existsSync, lstatSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { listMounts, unmountProjection } from '../src/mount/mount.js';
import { Store } from '../src/store/store.js';
import { readTree } from '../src/store/trees.js';
import { copyProject, runPython, runUvCli, veloUv, type PyIndex } from '../fixtures/uv/harness.js';
import { tempDirs } from './support/tmp.js';
import { startUvIndexSandbox, stopUvIndexSandbox, uvSandboxEnv } from './support/uvIndexSandbox.js';

const tmp = tempDirs('velo-uv-mount-');
let root: string;
let python: string;
let index: PyIndex;
let veloHome: string;
const SITE = 'lib/python3.11/site-packages';

function env(cacheName: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return uvSandboxEnv({ root, python, veloHome, index }, cacheName, extra);
}

function sync(project: string, args: string[], extra: NodeJS.ProcessEnv = {}): { json: Record<string, unknown>; stderr: string } {
  const r = veloUv(['sync', '--json', ...args], env('velo', extra), project);
  expect(r.code, r.stderr + r.stdout).toBe(0);
  return { json: JSON.parse(r.stdout) as Record<string, unknown>, stderr: r.stderr };
}

function isMountPoint(dir: string): boolean {
  return statSync(dir).dev !== statSync(join(dir, '..')).dev;
}

/** The bytes of the store object behind a file of the environment's tree, by its path. */
function storeObject(store: Store, tree: string, rel: string): Buffer {
  const e = readTree(store, tree).entries.find((x) => x.path === rel);
  if (!e) throw new Error(`${rel} is not in tree ${tree}`);
  return readFileSync(store.objectPath(e.digest, e.exec));
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  root = tmp();
  ({ python, veloHome, index } = await startUvIndexSandbox(root));
});

afterAll(async () => {
  // every mount this file made goes before its directories are deleted
  if (veloHome && existsSync(join(veloHome, 'store.json'))) {
    const store = Store.open(veloHome);
    try {
      for (const m of listMounts(store)) await unmountProjection(m.dest, { store }).catch(() => undefined);
    } finally {
      store.close();
    }
  }
  await stopUvIndexSandbox(index, root);
});

describe('velo uv sync --projection mount', () => {
  let proj: string;
  let venv: string;
  let tree: string;

  test('mounts the environment; python imports from it, uv accepts it as in sync', () => {
    proj = copyProject('app-one', join(root, 'p'));
    venv = join(proj, '.venv');
    const l = runUvCli(['lock'], env('lock'), proj);
    expect(l.code, l.stderr).toBe(0);

    const { json, stderr } = sync(proj, ['--locked', '--projection', 'mount']);
    expect(stderr).not.toMatch(/projection mount:/);
    expect(json).toMatchObject({ noop: false, projection: 'mount', method: 'overlay', engine: 'fuse', distributions: 4, local: 1 });
    tree = json.tree as string;
    expect(isMountPoint(venv)).toBe(true);
    const store = Store.open(veloHome);
    try {
      const mounts = listMounts(store).filter((m) => m.dest === venv);
      expect(mounts).toHaveLength(1);
      expect(mounts[0]).toMatchObject({ tree, state: 'mounted', method: 'overlay', ecosystem: 'uv' });
    } finally {
      store.close();
    }

    const imp = runPython(join(venv, 'bin', 'python'), 'import sys, app_one, velo_app, velo_greet, velo_data, velo_speedups; print(sys.prefix, velo_speedups.add_all(2, 3))', env('velo'), proj);
    expect(imp.code, imp.stderr).toBe(0);
    expect(imp.stdout.trim()).toBe(`${venv} 5`);
    // the stored bytecode is what python runs (nothing compiled, nothing written)
    const v = spawnSync(join(venv, 'bin', 'python'), ['-v', '-c', 'import velo_greet.cli'], { encoding: 'utf8', env: env('velo') });
    expect(v.stderr).toContain(`# code object from '${join(venv, SITE, 'velo_greet', '__pycache__', 'cli.cpython-311.pyc')}'`);
    expect(v.stderr).not.toMatch(/# wrote /);
    const app = spawnSync(join(venv, 'bin', 'app-one'), { encoding: 'utf8', env: env('velo') });
    expect(app.status, app.stderr).toBe(0);
    expect(app.stdout).toBe('hello, app\nalpha 1\nbeta 2\nsum 6\n');

    const again = runUvCli(['sync', '--locked'], env('velo'), proj);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/Checked 5 packages/);
    expect(again.stderr).not.toMatch(/Installed|Uninstalled|Built|Prepared/);
    const check = runUvCli(['pip', 'check', '--python', join(venv, 'bin', 'python')], env('velo'), proj);
    expect(check.code, check.stderr + check.stdout).toBe(0);

    // an unchanged mounted environment is a no-op
    expect(sync(proj, ['--locked', '--projection', 'mount']).json).toMatchObject({ noop: true });
  });

  test('writes land in the upper layer, never in the store', () => {
    const store = Store.open(veloHome);
    try {
      const cliRel = `${SITE}/velo_greet/cli.py`;
      const objectBefore = sha(storeObject(store, tree, cliRel));
      const recordRel = `${SITE}/velo_greet-1.0.0.dist-info/RECORD`;
      const recordObjectBefore = sha(storeObject(store, tree, recordRel));

      // an edit in place of a shared file, a new file, a per-environment file rewritten, a package removed by uv
      appendFileSync(join(venv, cliRel), '\nEDITED = True\n');
      writeFileSync(join(venv, SITE, 'velo_greet', 'new_module.py'), 'X = 1\n');
      writeFileSync(join(venv, recordRel), readFileSync(join(venv, recordRel), 'utf8') + 'velo_greet/new_module.py,,\n');
      const rm = runUvCli(['pip', 'uninstall', '--python', join(venv, 'bin', 'python'), 'velo-data'], env('velo'), proj);
      expect(rm.code, rm.stderr).toBe(0);
      expect(existsSync(join(venv, SITE, 'velo_data'))).toBe(false);
      const imp = runPython(join(venv, 'bin', 'python'), 'import velo_greet.cli as c, velo_greet.new_module as n; print(c.EDITED, n.X)', env('velo'), proj);
      expect(imp.stdout.trim()).toBe('True 1');

      // the store's objects are what they were
      expect(sha(storeObject(store, tree, cliRel))).toBe(objectBefore);
      expect(sha(storeObject(store, tree, recordRel))).toBe(recordObjectBefore);
      expect(storeObject(store, tree, cliRel).toString()).not.toContain('EDITED');
      // the upper layer has them
      const m = listMounts(store).find((x) => x.dest === venv)!;
      expect(m.upper).toBeDefined();
      expect(readFileSync(join(m.upper!, cliRel), 'utf8')).toContain('EDITED = True');
      expect(existsSync(join(m.upper!, SITE, 'velo_greet', 'new_module.py'))).toBe(true);
      expect(m.upperSummary!.deleted).toBeGreaterThan(0);
      expect(m.upperSummary!.paths.join('\n')).toMatch(/velo_data/);
    } finally {
      store.close();
    }

    // the environment changed underneath velo: the next sync mounts the recorded tree again, whole
    const { json } = sync(proj, ['--locked', '--projection', 'mount']);
    expect(json).toMatchObject({ noop: false, projection: 'mount', fromEnvironmentManifest: true, tree });
    expect(existsSync(join(venv, SITE, 'velo_data', 'table.txt'))).toBe(true);
    expect(readFileSync(join(venv, SITE, 'velo_greet', 'cli.py'), 'utf8')).not.toContain('EDITED');
    expect(existsSync(join(venv, SITE, 'velo_greet', 'new_module.py'))).toBe(false);
  });

  test('back to the link projection: the mount goes, a link farm takes its place', () => {
    const { json } = sync(proj, ['--locked']);
    expect(json).toMatchObject({ noop: false, projection: 'link', method: 'hardlink', tree });
    expect(isMountPoint(venv)).toBe(false);
    expect(lstatSync(join(venv, SITE, 'velo_greet', 'cli.py')).nlink).toBeGreaterThan(1);
    const store = Store.open(veloHome);
    try {
      expect(listMounts(store).filter((m) => m.dest === venv)).toEqual([]);
    } finally {
      store.close();
    }
    const imp = runPython(join(venv, 'bin', 'python'), 'import velo_data, velo_speedups; print(velo_speedups.add_all(1, 1))', env('velo'), proj);
    expect(imp.stdout.trim()).toBe('2');
  });

  test('where overlayfs cannot be mounted (forced: VELO_MOUNT_OVERLAY=0), a copy-up mount: in sync for uv, writes in the upper, the store untouched', () => {
    const other = copyProject('app-two', join(root, 'copyup'));
    const l = runUvCli(['lock'], env('lock'), other);
    expect(l.code, l.stderr).toBe(0);
    const copyUp = { VELO_MOUNT_OVERLAY: '0' };
    const { json, stderr } = sync(other, ['--locked', '--projection', 'mount'], copyUp);
    expect(stderr).not.toMatch(/projection mount:/);
    expect(json).toMatchObject({ noop: false, projection: 'mount', method: 'fuse-rw', engine: 'fuse' });
    const venv2 = join(other, '.venv');
    expect(isMountPoint(venv2)).toBe(true);
    const imp = runPython(join(venv2, 'bin', 'python'), 'import velo_greet; print(velo_greet.greet("x"))', env('velo'), other);
    expect(imp.code, imp.stderr).toBe(0);
    expect(imp.stdout).toBe('hello, x\n');
    const again = runUvCli(['sync', '--locked'], env('velo', copyUp), other);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toMatch(/Installed|Uninstalled|Built|Prepared/);

    const store = Store.open(veloHome);
    try {
      const rel = `${SITE}/velo_greet/__init__.py`;
      const before = sha(storeObject(store, json.tree as string, rel));
      appendFileSync(join(venv2, rel), '\nEDITED = True\n');
      const edited = runPython(join(venv2, 'bin', 'python'), 'import velo_greet; print(velo_greet.EDITED)', env('velo'), other);
      expect(edited.stdout.trim()).toBe('True');
      expect(sha(storeObject(store, json.tree as string, rel))).toBe(before);
      const m = listMounts(store).find((x) => x.dest === venv2)!;
      expect(m).toMatchObject({ method: 'fuse-rw', ecosystem: 'uv' });
      expect(readFileSync(join(m.upper!, rel), 'utf8')).toContain('EDITED = True');
    } finally {
      store.close();
    }
    // a file edited inside a package is repaired by --reinstall (as with uv): the recorded tree again, over an empty upper
    expect(sync(other, ['--locked', '--projection', 'mount', '--reinstall'], copyUp).json).toMatchObject({ noop: false, method: 'fuse-rw', fromEnvironmentManifest: true });
    expect(readFileSync(join(venv2, SITE, 'velo_greet', '__init__.py'), 'utf8')).not.toContain('EDITED');
  });

  test('without FUSE: linked, with one line saying why', () => {
    const other = copyProject('app-two', join(root, 'nofuse'));
    const l = runUvCli(['lock'], env('lock'), other);
    expect(l.code, l.stderr).toBe(0);
    const { json, stderr } = sync(other, ['--locked', '--projection', 'mount'], { VELO_NATIVE_ADDON: join(root, 'no-such-addon.node') });
    expect(json).toMatchObject({ projection: 'link', noop: false });
    expect(json.projectionNote).toMatch(/FUSE is unavailable: .*the environment was linked instead/);
    const lines = stderr.split('\n').filter((x) => x.startsWith('velo: projection mount:'));
    expect(lines).toHaveLength(1);
    expect(isMountPoint(join(other, '.venv'))).toBe(false);
    const imp = runPython(join(other, '.venv', 'bin', 'python'), 'import velo_greet; print(velo_greet.greet("x"))', env('velo'), other);
    expect(imp.stdout).toBe('hello, x\n');
  });

  test('a new checkout planned from uv.lock is mounted whole, and uv agrees', () => {
    // the first checkout goes through uv once (linked); the second is planned from uv.lock and mounted
    const first = copyProject('app-two', join(root, 'nc'), 'first');
    expect(runUvCli(['lock'], env('lock'), first).code).toBe(0);
    sync(first, ['--locked', '--projection', 'link']);
    const second = join(root, 'nc', 'second');
    cpSync(first, second, { recursive: true, filter: (src) => !src.includes('.venv') });
    const { json } = sync(second, ['--locked', '--projection', 'mount']);
    expect(json).toMatchObject({ plannedBy: 'uv.lock', projection: 'mount', distributions: 3 });
    const venv2 = join(second, '.venv');
    expect(isMountPoint(venv2)).toBe(true);
    expect(readFileSync(join(venv2, 'bin', 'velo-greet'), 'utf8').split('\n')[0]).toBe(`#!${venv2}/bin/python`);
    expect(readFileSync(join(venv2, 'bin', 'activate'), 'utf8')).toContain(`VIRTUAL_ENV='${venv2}'`);
    const imp = runPython(join(venv2, 'bin', 'python'), 'import velo_greet, velo_data, velo_speedups; print(velo_speedups.add_all(3, 4))', env('velo'), second);
    expect(imp.stdout.trim()).toBe('7');
    const check = runUvCli(['sync', '--locked', '--check'], env('velo'), second);
    expect(check.code, check.stderr).toBe(0);
    expect(check.stderr).toMatch(/Would make no changes/);
  });
});
