/**
 * velo uv sync against real uv, a real python and a PEP 503 index on
 * loopback: parity with `uv sync`, uv agreeing the environment is in sync,
 * bytecode compiled only for what gets imported (harvested) or, with
 * --compile-bytecode, all of it once, and used; reuse across projects with no download,
 * the no-op path and --offline.
 */
import { chmodSync, cpSync, existsSync, lstatSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { copyProject, REPO_ROOT, VERIFY_RECORDS, loggedUv, runPython, runUvCli, veloUv, type PyIndex } from '../fixtures/uv/harness.js';
import { velo as runVelo } from './support/runVelo.js';
import { tempDirs } from './support/tmp.js';
import { startUvIndexSandbox, stopUvIndexSandbox, uvSandboxEnv } from './support/uvIndexSandbox.js';

const tmp = tempDirs('velo-uv-sync-');
let root: string;
let python: string;
let index: PyIndex;
let veloHome: string;

function env(cacheName: string): NodeJS.ProcessEnv {
  return uvSandboxEnv({ root, python, veloHome, index }, cacheName);
}

function sync(project: string, cache: string, args: string[] = []): Record<string, unknown> {
  const r = veloUv(['sync', '--json', ...args], env(cache), project);
  expect(r.stderr + r.stdout, `velo uv sync in ${project}`).not.toMatch(/^velo: (?!.*ready)/m);
  expect(r.code, r.stderr + r.stdout).toBe(0);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

function lock(project: string, cache: string): void {
  const r = runUvCli(['lock'], env(cache), project);
  expect(r.code, r.stderr).toBe(0);
}

/** Every file under dir (relative paths), skipping __pycache__ and the given names. */
function listFiles(dir: string, skip: (rel: string) => boolean = () => false): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const d of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      if (d.name === '__pycache__' || skip(r)) continue;
      if (d.isDirectory()) walk(r);
      else out.push(r);
    }
  };
  walk('');
  return out.sort();
}

const SITE = 'lib/python3.11/site-packages';


beforeAll(async () => {
  root = tmp();
  ({ python, veloHome, index } = await startUvIndexSandbox(root));
});

afterAll(() => stopUvIndexSandbox(index, root));

describe('velo uv sync', () => {
  let velo1: string; // app-one, synced by velo
  let uv1: string; // app-one, synced by uv

  test('builds the same environment as uv sync, and uv agrees it is in sync', () => {
    velo1 = copyProject('app-one', join(root, 'velo'));
    uv1 = copyProject('app-one', join(root, 'uv'));
    lock(velo1, 'lock1');
    cpSync(join(velo1, 'uv.lock'), join(uv1, 'uv.lock'));

    const u = runUvCli(['sync', '--locked'], env('uv-only'), uv1);
    expect(u.code, u.stderr).toBe(0);
    const s = sync(velo1, 'velo1', ['--locked']);
    expect(s).toMatchObject({ noop: false, distributions: 4, fromStore: 0, ingested: 4, local: 1, python: expect.stringMatching(/^3\.11\./) });

    const uvEnv = join(uv1, '.venv');
    const veloEnv = join(velo1, '.venv');
    // as uv sync (without --compile-bytecode): no bytecode until something is imported
    for (const pkg of ['velo_greet', 'velo_data', 'velo_app', 'velo_speedups']) expect(existsSync(join(veloEnv, SITE, pkg, '__pycache__')), pkg).toBe(false);
    // the project's own editable install records mtimes of the project's files (uv_cache.json)
    const skip = (rel: string): boolean => rel === '.velo-state' || rel.endsWith('app_one-0.1.0.dist-info/uv_cache.json');
    const uvFiles = listFiles(uvEnv, skip);
    expect(listFiles(veloEnv, skip)).toEqual(uvFiles);
    const relocate = (b: Buffer): string => b.toString('latin1').split(uv1).join(velo1);
    for (const rel of uvFiles) {
      const a = lstatSync(join(uvEnv, rel));
      const b = lstatSync(join(veloEnv, rel));
      expect(b.isSymbolicLink(), rel).toBe(a.isSymbolicLink());
      if (a.isSymbolicLink()) continue;
      const mine = readFileSync(join(veloEnv, rel)).toString('latin1');
      if (rel.endsWith('.dist-info/RECORD')) {
        // same rows; a row's hash may only differ where the file names its environment or project
        // (launchers, direct_url.json: their bytes are compared above, their hashes checked below)
        const rows = (t: string): string[][] => t.trim().split('\n').map((l) => l.split(','));
        const theirRows = rows(readFileSync(join(uvEnv, rel)).toString('latin1'));
        const myRows = rows(mine);
        expect(myRows.map((r) => r[0]), rel).toEqual(theirRows.map((r) => r[0]));
        const distDir = join(uvEnv, rel, '..', '..');
        for (const [i, row] of theirRows.entries()) {
          const file = readFileSync(join(distDir, row[0]!)).toString('latin1');
          if (file.includes(uv1) || row[0]!.endsWith('uv_cache.json')) continue;
          expect(myRows[i], `${rel}: ${row[0]}`).toEqual(row);
        }
      } else {
        expect(mine, rel).toBe(relocate(readFileSync(join(uvEnv, rel))));
      }
      expect((b.mode & 0o111) !== 0, `exec bit of ${rel}`).toBe((a.mode & 0o111) !== 0);
    }

    // every RECORD is valid
    const records = runPython(join(veloEnv, 'bin', 'python'), VERIFY_RECORDS, env('velo1'), velo1);
    expect(records.code, records.stderr).toBe(0);
    expect(JSON.parse(records.stdout)).toMatchObject({ bad: [] });

    // uv: nothing to do, nothing broken, and uv run works
    const before = statSync(join(veloEnv, SITE), { bigint: true }).mtimeNs;
    const again = runUvCli(['sync', '--locked'], env('velo1'), velo1);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/Checked 5 packages/);
    expect(again.stderr).not.toMatch(/Installed|Uninstalled|Built|Prepared/);
    expect(statSync(join(veloEnv, SITE), { bigint: true }).mtimeNs).toBe(before);
    const check = runUvCli(['pip', 'check', '--python', join(veloEnv, 'bin', 'python')], env('velo1'), velo1);
    expect(check.code, check.stderr + check.stdout).toBe(0);
    expect(check.stdout + check.stderr).toMatch(/All installed packages are compatible/);
    const run = runUvCli(['run', '--locked', 'python', '-c', 'import app_one, velo_app, velo_greet, velo_data, velo_speedups; print(velo_speedups.add_all(2, 3))'], env('velo1'), velo1);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trim()).toBe('5');
    expect(run.stderr).not.toMatch(/Installed|Uninstalled/);

    // launchers and the rewritten .data script run with this environment's python
    const app = spawnSync(join(veloEnv, 'bin', 'app-one'), { encoding: 'utf8', env: env('velo1') });
    expect(app.status, app.stderr).toBe(0);
    expect(app.stdout).toBe('hello, app\nalpha 1\nbeta 2\nsum 6\n');
    const tool = spawnSync(join(veloEnv, 'bin', 'velo-data-tool'), { encoding: 'utf8', env: env('velo1') });
    expect(tool.status, tool.stderr).toBe(0);
    expect(tool.stdout).toBe('alpha 1\nbeta 2\n');
    expect(readFileSync(join(veloEnv, 'bin', 'velo-greet'), 'utf8').split('\n')[0]).toBe(`#!${veloEnv}/bin/python`);

    // shared files come from the store; per-environment files are this environment's own
    expect(lstatSync(join(veloEnv, SITE, 'velo_greet', 'cli.py')).nlink).toBeGreaterThan(1);
    expect(lstatSync(join(veloEnv, 'bin', 'velo-greet')).nlink).toBe(1);
    expect(lstatSync(join(veloEnv, SITE, 'velo_greet-1.0.0.dist-info', 'RECORD')).nlink).toBe(1);
    expect(lstatSync(join(veloEnv, SITE, 'velo_greet-1.0.0.dist-info', 'INSTALLER')).nlink).toBe(1);
  });

  test('compiles nothing by default; what python compiled on import is harvested at the next sync: compiled by velo (hash-based), shared, linked in place of python\'s', () => {
    const veloEnv = join(velo1, '.venv');
    const pycache = (envDir: string, pkg: string): string => join(envDir, SITE, pkg, '__pycache__');
    const importAll = (envDir: string): ReturnType<typeof spawnSync> =>
      spawnSync(join(envDir, 'bin', 'python'), ['-v', '-c', 'import velo_greet.cli, velo_data'], { encoding: 'utf8', env: env('velo1') });
    // the first test ran this environment's programs: python wrote bytecode for what they imported
    expect(importAll(veloEnv).status).toBe(0);
    const written = join(pycache(veloEnv, 'velo_greet'), 'cli.cpython-311.pyc');
    expect(lstatSync(written).nlink, "python's own file").toBe(1);
    expect(readFileSync(written).readUInt32LE(4), 'PEP 552 flags: timestamp-based').toBe(0);

    // the next sync that links (here a second checkout of the project) harvests it
    const other = copyProject('app-one', join(root, 'harvest'));
    cpSync(join(velo1, 'uv.lock'), join(other, 'uv.lock'));
    const s = sync(other, 'velo1', ['--locked']);
    const bytecode = s.bytecode as { compiled: number; harvested: number; replaced: number };
    expect(bytecode.compiled).toBe(0);
    expect(bytecode.harvested).toBeGreaterThanOrEqual(3); // velo_greet/__init__, velo_greet/cli, velo_data/__init__, …
    expect(bytecode.replaced).toBe(bytecode.harvested);
    // the first environment's own copy is gone: the stored, hash-based pyc is linked in its place
    expect(lstatSync(written).nlink).toBeGreaterThan(1);
    expect(readFileSync(written).readUInt32LE(4), 'PEP 552 flags: hash-based, checked').toBe(0b11);
    // the new checkout has the same file from the start, and only what was imported
    const otherEnv = join(other, '.venv');
    expect(lstatSync(join(pycache(otherEnv, 'velo_greet'), 'cli.cpython-311.pyc')).ino).toBe(lstatSync(written).ino);
    expect(existsSync(join(otherEnv, SITE, 'velo_data', 'tests', '__pycache__'))).toBe(false);
    // python uses it in both, and writes nothing
    for (const envDir of [veloEnv, otherEnv]) {
      const v = importAll(envDir);
      expect(v.status, String(v.stderr)).toBe(0);
      expect(String(v.stderr)).toContain(`# code object from '${join(pycache(envDir, 'velo_greet'), 'cli.cpython-311.pyc')}'`);
      expect(String(v.stderr)).not.toMatch(/# wrote /);
    }
    // and uv agrees the new checkout is in sync
    const check = runUvCli(['sync', '--locked', '--check'], env('velo1'), other);
    expect(check.code, check.stderr + check.stdout).toBe(0);

    // an edited source is never served stale bytecode: the hash check catches it
    const cli = join(veloEnv, SITE, 'velo_greet', 'cli.py');
    const source = readFileSync(cli);
    unlinkSync(cli); // as editors do: a new file, not a write through the store's hardlink
    writeFileSync(cli, source.toString().replace('print(greet(name))', 'print("edited", greet(name))'));
    const edited = spawnSync(join(veloEnv, 'bin', 'velo-greet'), ['x'], { encoding: 'utf8', env: env('velo1') });
    expect(edited.stdout).toBe('edited hello, x\n');
  });

  test('velo gc keeps harvested bytecode as long as its distribution', () => {
    const g = runVelo(['gc', '--json'], env('velo1'));
    expect(g.code, g.stderr).toBe(0);
    const p = copyProject('app-one', join(root, 'after-gc'));
    cpSync(join(velo1, 'uv.lock'), join(p, 'uv.lock'));
    sync(p, 'velo1', ['--locked']);
    // velo_data's bytecode was harvested before gc and is a link in every environment now: only the store has it
    const pyc = join(p, '.venv', SITE, 'velo_data', '__pycache__', '__init__.cpython-311.pyc');
    expect(existsSync(pyc), 'kept through gc').toBe(true);
    expect(readFileSync(pyc).readUInt32LE(4), 'the stored, hash-based pyc').toBe(0b11);
  });

  test('--compile-bytecode compiles every module once into the store, test suites aside', () => {
    const p = copyProject('app-one', join(root, 'compile-all'));
    cpSync(join(velo1, 'uv.lock'), join(p, 'uv.lock'));
    // a store of its own: nothing harvested into it yet
    const r = veloUv(['sync', '--json', '--locked', '--compile-bytecode'], { ...env('velo1'), VELO_HOME: join(root, 'store-compile-all') }, p);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { bytecode: { compiled: number } }).bytecode.compiled).toBeGreaterThanOrEqual(5); // every module of the four distributions
    const envDir = join(p, '.venv');
    for (const pkg of ['velo_greet', 'velo_data', 'velo_app', 'velo_speedups']) {
      for (const f of readdirSync(join(envDir, SITE, pkg)).filter((n) => n.endsWith('.py'))) {
        const pyc = join(envDir, SITE, pkg, '__pycache__', f.replace(/\.py$/, '.cpython-311.pyc'));
        expect(readFileSync(pyc).readUInt32LE(4), `${pkg}/${f}: hash-based, checked`).toBe(0b11);
        expect(lstatSync(pyc).nlink, `${pkg}/${f}: shared`).toBeGreaterThan(1);
      }
    }
    const v = spawnSync(join(envDir, 'bin', 'python'), ['-v', '-c', 'import velo_greet.cli, velo_data, velo_app, velo_speedups'], { encoding: 'utf8', env: env('velo1') });
    expect(v.status, v.stderr).toBe(0);
    expect(v.stderr).not.toMatch(/# wrote /);

    // a distribution's own test suite is left uncompiled (programs do not import it) and still runs:
    // python compiles it on demand into the environment, as in a plain uv environment
    const suite = join(envDir, SITE, 'velo_data', 'tests');
    expect(existsSync(join(suite, 'test_table.py'))).toBe(true);
    expect(existsSync(join(suite, '__pycache__'))).toBe(false);
    const t = spawnSync(join(envDir, 'bin', 'python'), ['-c', 'from velo_data.tests.test_table import test_package_name as t; t(); print("ok")'], { encoding: 'utf8', env: env('velo1') });
    expect(t.stdout.trim(), t.stderr).toBe('ok');
    expect(existsSync(join(suite, '__pycache__'))).toBe(true);
  });

  test('is a no-op when nothing changed, and repairs what changed underneath it', () => {
    const veloEnv = join(velo1, '.venv');
    const greet = (): string => spawnSync(join(veloEnv, 'bin', 'velo-greet'), ['x'], { encoding: 'utf8', env: env('velo1') }).stdout;
    // a file replaced inside a package: like uv sync, the no-op check does not open packages …
    expect(sync(velo1, 'velo1', ['--locked'])).toMatchObject({ noop: true, distributions: 4 });
    expect(greet()).toBe('edited hello, x\n');
    // … and --reinstall re-links every distribution from the store
    expect(sync(velo1, 'velo1', ['--locked', '--reinstall'])).toMatchObject({ noop: false, fromStore: 4, ingested: 0 });
    expect(greet()).toBe('hello, x\n');
    expect(sync(velo1, 'velo1', ['--locked'])).toMatchObject({ noop: true });

    // a file edited in place, through the hardlink, changes the store object itself: the next
    // install that needs it notices, quarantines it and fetches that distribution again
    const cli = join(veloEnv, SITE, 'velo_greet', 'cli.py');
    chmodSync(cli, 0o644);
    writeFileSync(cli, readFileSync(cli, 'utf8').replace('print(greet(name))', 'print("tampered", greet(name))'));
    const heal = veloUv(['sync', '--json', '--locked', '--reinstall'], env('velo1'), velo1);
    expect(heal.code, heal.stderr).toBe(0);
    // said once, as every damaged object is (issue 19)
    expect(heal.stderr.match(/^velo: .*store object\(s\) missing or changed in place, quarantined/gm)).toHaveLength(1);
    const healed = JSON.parse(heal.stdout) as Record<string, unknown>;
    expect(healed).toMatchObject({ noop: false, repaired: 1, retried: true, ingested: 1, fromStore: 3 });
    expect(greet()).toBe('hello, x\n');

    // a package removed behind velo's back is put back
    const rm = runUvCli(['pip', 'uninstall', '--python', join(veloEnv, 'bin', 'python'), 'velo-data'], env('velo1'), velo1);
    expect(rm.code, rm.stderr).toBe(0);
    expect(sync(velo1, 'velo1', ['--locked'])).toMatchObject({ noop: false, fromStore: 4 });
    expect(existsSync(join(veloEnv, SITE, 'velo_data', 'table.txt'))).toBe(true);

    // touching pyproject.toml is a change uv watches (it rebuilds the editable install): so does velo
    const t = new Date(Date.now() + 5000);
    utimesSync(join(velo1, 'pyproject.toml'), t, t);
    expect(sync(velo1, 'velo1', ['--locked'])).toMatchObject({ noop: false });
    const after = runUvCli(['sync', '--locked'], env('velo1'), velo1);
    expect(after.stderr).not.toMatch(/Installed|Uninstalled/);

    // different arguments are a different environment
    expect(sync(velo1, 'velo1', ['--locked', '--no-install-project'])).toMatchObject({ noop: false, local: 0 });
    expect(existsSync(join(veloEnv, SITE, 'app_one.pth'))).toBe(false);
    expect(sync(velo1, 'velo1', ['--locked'])).toMatchObject({ noop: false, local: 1 });
    expect(sync(velo1, 'velo1', ['--locked'])).toMatchObject({ noop: true });
  });

  // How long the no-op takes beside `node -e 0` is bench/noop-bench.mjs's job;
  // this test checks that an unchanged env is left exactly as it is.
  test('an unchanged env is a no-op that touches nothing', () => {
    const site = statSync(join(velo1, '.venv', SITE));
    const state = readFileSync(join(velo1, '.venv', '.velo-state'));
    const r = veloUv(['sync', '--locked', '--json'], env('velo1'), velo1);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ noop: true });
    expect(statSync(join(velo1, '.venv', SITE)).mtimeMs).toBe(site.mtimeMs);
    expect(readFileSync(join(velo1, '.venv', '.velo-state')).equals(state)).toBe(true);
  });

  test('velo run syncs the env first, then runs the command inside it', () => {
    const proj = copyProject('app-one', join(root, 'run'));
    lock(proj, 'run');
    const r = spawnSync(process.execPath, [join(REPO_ROOT, 'dist', 'cli', 'velo.js'), 'run', 'python', '-c', 'import sys, velo_greet; print(sys.prefix)'], {
      env: env('run'),
      cwd: proj,
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(join(proj, '.venv'));
    expect(existsSync(join(proj, '.venv', '.velo-state'))).toBe(true);
  });

  test('a second project takes every distribution from the store, with no download', async () => {
    const two = copyProject('app-two', join(root, 'velo'));
    lock(two, 'lock2');
    await index.clear();
    const s = sync(two, 'fresh-two', ['--locked']); // an empty uv cache: anything uv installed would be downloaded
    expect(s).toMatchObject({ distributions: 3, fromStore: 3, ingested: 0, local: 0, newObjects: 0 });
    expect(await index.downloads()).toEqual([]);
    const imp = runPython(join(two, '.venv', 'bin', 'python'), 'import velo_greet, velo_data, velo_speedups; print(velo_speedups.add_all(4, 5))', env('fresh-two'), two);
    expect(imp.stdout.trim()).toBe('9');
    // one copy on disk for both projects
    const a = statSync(join(velo1, '.venv', SITE, 'velo_speedups', '__init__.py'));
    const b = statSync(join(two, '.venv', SITE, 'velo_speedups', '__init__.py'));
    expect(b.ino).toBe(a.ino);
    const again = runUvCli(['sync', '--locked'], env('fresh-two'), two);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/Checked 3 packages/);
  });

  test('a fresh .venv with unchanged inputs is the recorded environment: one projection, no uv', () => {
    const proj = copyProject('app-one', join(root, 'manifest'));
    lock(proj, 'manifest');
    const uv = loggedUv(join(root, 'uv-log-manifest'));
    const e = { ...env('manifest'), VELO_UV: uv.path };
    const venv = join(proj, '.venv');
    const run = (args: string[]): Record<string, unknown> => {
      const r = veloUv(['sync', '--json', ...args], e, proj);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as Record<string, unknown>;
    };
    const newCalls = (since: number): string[] => uv.calls().slice(since);

    // planned and installed through uv, under --frozen (uv.lock is not checked)
    const first = run(['--frozen']);
    expect(first).toMatchObject({ fromEnvironmentManifest: false, distributions: 4, local: 1 });
    expect(uv.calls().filter((c) => c.startsWith('sync ')).length).toBeGreaterThan(0);
    const files = listFiles(venv, (rel) => rel === '.velo-state');
    const launcher = readFileSync(join(venv, 'bin', 'app-one'));

    // the same inputs into a fresh .venv: the recorded tree, and uv does not run at all
    rmSync(venv, { recursive: true });
    let n = uv.calls().length;
    const again = run(['--frozen']);
    expect(again).toMatchObject({ fromEnvironmentManifest: true, distributions: 4, fromStore: 4, ingested: 0, local: 1, tree: first.tree });
    expect(newCalls(n)).toEqual([]);
    expect(listFiles(venv, (rel) => rel === '.velo-state')).toEqual(files);
    expect(readFileSync(join(venv, 'bin', 'app-one')).equals(launcher)).toBe(true);
    // shared files are the store's, per-environment files are copies of their own
    expect(lstatSync(join(venv, SITE, 'velo_greet', 'cli.py')).nlink).toBeGreaterThan(1);
    for (const rel of ['bin/app-one', 'pyvenv.cfg', `${SITE}/velo_greet-1.0.0.dist-info/RECORD`, `${SITE}/velo_greet-1.0.0.dist-info/INSTALLER`]) {
      expect(lstatSync(join(venv, rel)).nlink, rel).toBe(1);
    }
    const app = spawnSync(join(venv, 'bin', 'app-one'), { encoding: 'utf8', env: e });
    expect(app.stdout).toBe('hello, app\nalpha 1\nbeta 2\nsum 6\n');
    const checkedByUv = runUvCli(['sync', '--locked'], env('manifest'), proj);
    expect(checkedByUv.code, checkedByUv.stderr).toBe(0);
    expect(checkedByUv.stderr).toMatch(/Checked 5 packages/);
    expect(checkedByUv.stderr).not.toMatch(/Installed|Uninstalled|Built|Prepared/);

    // --locked: this lock was never checked with these inputs, so `uv lock --check` runs once …
    rmSync(venv, { recursive: true });
    n = uv.calls().length;
    expect(run(['--locked'])).toMatchObject({ fromEnvironmentManifest: true });
    expect(newCalls(n)).toEqual(['lock --check']);
    // … and not again
    rmSync(venv, { recursive: true });
    n = uv.calls().length;
    expect(run(['--locked'])).toMatchObject({ fromEnvironmentManifest: true });
    expect(newCalls(n)).toEqual([]);

    // a file uv watches in the project changed: uv plans (and rebuilds the editable install) again
    const t = new Date(Date.now() + 7000);
    utimesSync(join(proj, 'pyproject.toml'), t, t);
    n = uv.calls().length;
    expect(run(['--locked'])).toMatchObject({ fromEnvironmentManifest: false });
    expect(newCalls(n).some((c) => c.startsWith('sync '))).toBe(true);
    // other arguments are another environment
    n = uv.calls().length;
    expect(run(['--locked', '--no-install-project'])).toMatchObject({ fromEnvironmentManifest: false, local: 0 });
    expect(newCalls(n).some((c) => c.startsWith('sync '))).toBe(true);
  });

  test('--offline works when the store has everything', async () => {
    const three = copyProject('app-one', join(root, 'offline'));
    cpSync(join(velo1, 'uv.lock'), join(three, 'uv.lock'));
    await index.clear();
    const s = sync(three, 'fresh-offline', ['--offline', '--locked']);
    expect(s).toMatchObject({ distributions: 4, fromStore: 4, ingested: 0, local: 1 });
    expect(await index.requests()).toEqual([]);
    const run = spawnSync(join(three, '.venv', 'bin', 'app-one'), { encoding: 'utf8', env: env('fresh-offline') });
    expect(run.stdout).toContain('sum 6');
  });
});

