/**
 * velo uv pip sync / velo uv pip install -r: requirements.txt projects
 * through the store, checked against real uv on the same requirements in
 * the same kind of venv — the same files (modulo the venv's path), every
 * RECORD verifying, `uv pip check` clean, `uv pip freeze` equal; a second
 * venv with no download and no uv install; sync removing what is not
 * listed; hash pins; a bad hash failing with uv's code and words; forms
 * velo does not model run as plain uv.
 */
import { copyFileSync, lstatSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { copyProject, loggedUv, runPython, runUvCli, veloUv, veloUvChild, VERIFY_RECORDS, type PyIndex } from '../fixtures/uv/harness.js';
import { parsePipArgs } from '../src/uv/pipArgs.js';
import { readRequirements, UnsupportedRequirements } from '../src/uv/requirementsFile.js';
import { tempDirs } from './support/tmp.js';
import { expectSameEnvFiles, listEnvFiles } from './support/uvEnvFiles.js';
import { startUvIndexSandbox, stopUvIndexSandbox, uvSandboxEnv } from './support/uvIndexSandbox.js';

const tmp = tempDirs('velo-uv-pip-');
let root: string;
let python: string;
let index: PyIndex;
let veloHome: string;
const SITE = 'lib/python3.11/site-packages';
const ALL = ['velo-app==0.3.0', 'velo-data==2.1.0', 'velo-greet==1.0.0', 'velo-speedups==1.2.0'];

function env(cache: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...uvSandboxEnv({ root, python, veloHome, index }, cache), ...extra };
}

beforeAll(async () => {
  root = tmp();
  let wheels: string;
  ({ python, veloHome, index, wheels } = await startUvIndexSandbox(root));
  // a second platform's wheel beside the real one: uv.lock lists both, a resolution for this interpreter only one
  const speedups = readdirSync(wheels).find((f) => f.startsWith('velo_speedups-1.2.0-'))!;
  copyFileSync(join(wheels, speedups), join(wheels, speedups.replace(/-[^-]+\.whl$/, '-win_amd64.whl')));
  mkdirSync(join(root, 'reqs'));
  writeFileSync(join(root, 'reqs', 'requirements.in'), 'velo-app==0.3.0\nvelo-speedups\n');
  writeFileSync(join(root, 'reqs', 'greet.txt'), 'velo-greet==1.0.0\n');
  const c = runUvCli(['pip', 'compile', '-q', 'requirements.in', '-o', 'requirements.txt'], env('compile'), join(root, 'reqs'));
  expect(c.code, c.stderr).toBe(0);
  const h = runUvCli(['pip', 'compile', '-q', 'requirements.in', '--generate-hashes', '-o', 'hashed.txt'], env('compile'), join(root, 'reqs'));
  expect(h.code, h.stderr).toBe(0);
});

afterAll(() => stopUvIndexSandbox(index, root));

beforeEach(async () => {
  await index.clear();
});

let n = 0;
/** A new empty venv made by uv (what `uv pip` installs into). */
function newVenv(name = `venv-${++n}`): string {
  const dir = join(root, 'venvs', name);
  const r = runUvCli(['venv', '-q', dir], env('venvs'), root);
  expect(r.code, r.stderr).toBe(0);
  return dir;
}

function reqs(name: string): string {
  return join(root, 'reqs', name);
}

function velo(args: string[], venv: string, cache: string, extra: NodeJS.ProcessEnv = {}): ReturnType<typeof veloUv> {
  return veloUv(['pip', ...args, '--python', join(venv, 'bin', 'python')], env(cache, extra), root);
}

function plain(args: string[], venv: string, cache: string): ReturnType<typeof runUvCli> {
  return runUvCli(['pip', ...args, '--python', join(venv, 'bin', 'python')], env(cache), root);
}

function freeze(venv: string): string[] {
  const r = plain(['freeze'], venv, 'freeze');
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim().split('\n').filter(Boolean);
}

/** The venv velo filled is the one uv filled: same files, exec bits and bytes (modulo the path); RECORDs verify; uv pip check clean. */
function expectAsUvInstalled(mine: string, theirs: string): void {
  expectSameEnvFiles(mine, theirs, theirs, mine);
  expect(freeze(mine)).toEqual(freeze(theirs));
  const check = plain(['check'], mine, 'check');
  expect(check.code, check.stdout + check.stderr).toBe(0);
  const records = runPython(join(mine, 'bin', 'python'), VERIFY_RECORDS, env('x'), root);
  expect(records.code, records.stderr).toBe(0);
  expect(JSON.parse(records.stdout)).toMatchObject({ bad: [] });
}

describe('requirement files and arguments', () => {
  test('names, pins, hashes, nested files; unsupported forms are named', () => {
    const dir = join(root, 'parse');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'base.txt'), '--index-url http://127.0.0.1:9/simple\nFoo_Bar[x]==1.0 \\\n    --hash=sha256:AB12 \\\n    --hash=sha256:cd34\n# a comment\nbaz>=2 ; python_version >= "3"\n');
    writeFileSync(join(dir, 'top.txt'), '-r base.txt\nqux===3.1  # pinned\n');
    const r = readRequirements(['top.txt'], dir);
    expect(r.requirements.map((q) => [q.name, q.pinned, q.hashes])).toEqual([
      ['foo-bar', true, ['sha256:ab12', 'sha256:cd34']],
      ['baz', false, []],
      ['qux', true, []],
    ]);
    expect(r.indexOptions).toEqual(['--index-url http://127.0.0.1:9/simple']);
    for (const line of ['-e ./local', './pkg', 'pkg @ https://example.com/pkg.whl', 'git+https://example.com/x.git', '-c constraints.txt']) {
      writeFileSync(join(dir, 'bad.txt'), `${line}\n`);
      expect(() => readRequirements(['bad.txt'], dir), line).toThrow(UnsupportedRequirements);
    }
    expect(parsePipArgs('install', ['-r', 'a.txt', '--index-url', 'http://x', '--json'])).toMatchObject({ requirementFiles: ['a.txt'], uvOptions: ['--index-url', 'http://x'], json: true });
    expect(parsePipArgs('install', ['-r', 'a.txt', 'requests']).delegate).toMatch(/package arguments/);
    expect(parsePipArgs('sync', ['a.txt', '--system']).delegate).toMatch(/--system/);
    expect(parsePipArgs('sync', []).delegate).toMatch(/no requirements file/);
    expect(parsePipArgs('sync', ['a.txt', '--require-hashes'])).toMatchObject({ requireHashes: true, requirementFiles: ['a.txt'] });
    expect(parsePipArgs('sync', ['a.txt', '--refresh'])).toMatchObject({ refresh: true, uvOptions: ['--refresh'], fingerprint: [] });
  });
});

describe('velo uv pip sync', () => {
  test('a venv as uv pip sync fills it; a second venv from the store with no download and no uv install', async () => {
    const theirs = newVenv();
    const u = plain(['sync', reqs('requirements.txt')], theirs, 'plain');
    expect(u.code, u.stderr).toBe(0);

    const logged = loggedUv(join(root, 'uv-log-second')); // one uv binary for both (it is part of what a remembered resolution is keyed by)
    const first = newVenv();
    const r1 = velo(['sync', reqs('requirements.txt'), '--json'], first, 'velo', { VELO_UV: logged.path });
    expect(r1.code, r1.stderr).toBe(0);
    expect(JSON.parse(r1.stdout)).toMatchObject({ mode: 'sync', distributions: 4, ingested: 4, fromStore: 0, removed: [], resolvedBy: 'uv' });
    // one copy: uv's unpacked cache entries became links to the store's objects
    expect(JSON.parse(r1.stdout).uvCacheLinked.files).toBeGreaterThan(0);
    expectAsUvInstalled(first, theirs);

    await index.clear();
    const calls = logged.calls().length;
    const second = newVenv();
    const r2 = velo(['sync', reqs('requirements.txt'), '--json'], second, 'velo', { VELO_UV: logged.path });
    expect(r2.code, r2.stderr).toBe(0);
    // every line pins a version: uv's resolution of these very files is remembered, so no uv runs at all
    expect(JSON.parse(r2.stdout)).toMatchObject({ distributions: 4, ingested: 0, fromStore: 4, resolvedBy: 'memo' });
    expect(await index.downloads()).toEqual([]);
    expect(logged.calls().slice(calls)).toEqual([]);
    expectAsUvInstalled(second, theirs);
    // shared files are the store's (one copy); launchers are this venv's own and run
    expect(lstatSync(join(second, SITE, 'velo_greet', 'cli.py')).nlink).toBeGreaterThan(2);
    expect(lstatSync(join(second, 'bin', 'velo-greet')).nlink).toBe(1);
    const greet = spawnSync(join(second, 'bin', 'velo-greet'), ['pip'], { encoding: 'utf8', env: env('x') });
    expect(greet.status, greet.stderr).toBe(0);
    const imp = runPython(join(second, 'bin', 'python'), 'import velo_app, velo_speedups; print("ok")', env('x'), root);
    expect(imp.stdout.trim(), imp.stderr).toBe('ok');

    // again: nothing to do; --refresh asks uv again
    const r3 = velo(['sync', reqs('requirements.txt'), '--json', '--refresh'], second, 'velo', { VELO_UV: logged.path });
    expect(JSON.parse(r3.stdout)).toMatchObject({ unchanged: 4, installed: [], removed: [], resolvedBy: 'uv' });
    expect(logged.calls().slice(calls)).toEqual([expect.stringMatching(/^pip compile .*--no-deps/), expect.stringMatching(/^pip compile .*--universal/)]);
  });

  test('removes what the files do not list, as uv pip sync does', () => {
    const mine = newVenv();
    const theirs = newVenv();
    for (const [venv, run] of [[mine, velo], [theirs, plain]] as const) {
      expect(run(['sync', reqs('requirements.txt')], venv, 'shrink').code).toBe(0);
      const r = run(['sync', reqs('greet.txt')], venv, 'shrink');
      expect(r.code, r.stderr).toBe(0);
    }
    expect(freeze(mine)).toEqual(['velo-greet==1.0.0']);
    // uv's uninstall took velo's bytecode with the rest
    expect(readdirSync(join(mine, SITE)).sort()).toEqual(readdirSync(join(theirs, SITE)).sort());
    expectAsUvInstalled(mine, theirs);
  });

  test('hash-pinned requirements install from the store; a bad hash fails with uv\'s exit code and words, the venv untouched', async () => {
    const theirs = newVenv();
    expect(plain(['sync', reqs('hashed.txt')], theirs, 'hashed').code).toBe(0);
    const mine = newVenv();
    const ok = velo(['sync', reqs('hashed.txt'), '--json'], mine, 'hashed');
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ distributions: 4, installed: ALL.map((s) => ({ name: s.split('==')[0], version: s.split('==')[1] })) });
    expectAsUvInstalled(mine, theirs);

    const text = readFileSync(reqs('hashed.txt'), 'utf8');
    const wrong = text.replace(/(velo-app==0\.3\.0 \\\n\s+--hash=sha256:)([0-9a-f])/, (_m, head: string, c: string) => head + (c === '0' ? '1' : '0'));
    expect(wrong).not.toBe(text);
    writeFileSync(reqs('wrong-hash.txt'), wrong);
    const fresh = newVenv();
    const uvSays = plain(['sync', reqs('wrong-hash.txt')], newVenv(), 'wrong-uv');
    const bad = velo(['sync', reqs('wrong-hash.txt')], fresh, 'wrong-velo');
    expect(uvSays.code).toBe(1);
    expect(bad.code).toBe(uvSays.code);
    expect(bad.stderr).toMatch(/Hash mismatch for `velo-app==0\.3\.0`/);
    expect(bad.stderr).not.toMatch(/stale/);
    expect(freeze(fresh)).toEqual([]);

    // --require-hashes with a file that has none: uv refuses, and so does velo, with uv's code
    const uvRefuses = plain(['sync', reqs('requirements.txt'), '--require-hashes'], newVenv(), 'require');
    const veloRefuses = velo(['sync', reqs('requirements.txt'), '--require-hashes'], fresh, 'require');
    expect(uvRefuses.code).not.toBe(0);
    expect(veloRefuses.code).toBe(uvRefuses.code);
    expect(veloRefuses.stderr).toContain(uvRefuses.stderr.split('\n').find((l) => /hash/i.test(l))!.trim());
    expect(freeze(fresh)).toEqual([]);
  });

  test('a wheel whose RECORD lies is refused (exit 6) and the venv stays as it was; a dead run\'s staging is cleared', () => {
    const venv = newVenv();
    expect(velo(['sync', reqs('greet.txt')], venv, 'badrecord').code).toBe(0);
    const before = listEnvFiles(venv);
    writeFileSync(reqs('badrecord.txt'), 'velo-badrecord==1.0.0\nvelo-data==2.1.0\n');
    const bad = velo(['sync', reqs('badrecord.txt')], venv, 'badrecord');
    expect(bad.code, bad.stderr).toBe(6);
    expect(bad.stderr).toMatch(/velo-badrecord 1\.0\.0: velo_badrecord\/__init__\.py does not match its RECORD/);
    expect(listEnvFiles(venv)).toEqual(before);
    expect(freeze(venv)).toEqual(['velo-greet==1.0.0']);

    mkdirSync(join(venv, '.velo-pip-stage-999999999', 'lib'), { recursive: true }); // a velo killed mid-way (no such pid)
    const r = velo(['sync', reqs('requirements.txt')], venv, 'badrecord');
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(venv).filter((n) => n.startsWith('.velo'))).toEqual([]);
  });

  test('an editable or path requirement runs as plain uv, saying so', () => {
    const project = copyProject('app-one', join(root, 'local'));
    writeFileSync(reqs('local.txt'), `-e ${project}\n`);
    const mine = newVenv();
    const r = velo(['sync', reqs('local.txt')], mine, 'local');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/velo: .*editable.*running uv pip sync as given/);
    expect(freeze(mine).some((l) => l.includes('app-one') || l.includes('app_one'))).toBe(true);
    // other uv pip commands are uv's, output and exit code
    const list = velo(['freeze'], mine, 'local');
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout.trim().split('\n')).toEqual(freeze(mine));
    const help = veloUv(['pip', '--help'], env('local'), root);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/velo uv pip install -r/);
  });
});

describe('velo uv pip install -r', () => {
  test('adds to what is there, as uv pip install -r does', () => {
    const mine = newVenv();
    const theirs = newVenv();
    for (const [venv, run] of [[mine, velo], [theirs, plain]] as const) {
      expect(run(['sync', reqs('greet.txt')], venv, 'add').code).toBe(0);
      const r = run(['install', '-r', reqs('requirements.in')], venv, 'add');
      expect(r.code, r.stderr).toBe(0);
    }
    // velo-speedups is not pinned: uv resolves every time (a newer release would be picked up)
    const again = velo(['install', '-r', reqs('requirements.in'), '--json'], newVenv(), 'add');
    expect(JSON.parse(again.stdout)).toMatchObject({ resolvedBy: 'uv', fromStore: 4 });
    expect(freeze(mine)).toEqual(ALL);
    expectAsUvInstalled(mine, theirs);
  });

  test('a velo uv sync project and a requirements.txt venv share the store: nothing fetched twice (keys over every wheel of a version, as uv.lock lists them)', () => {
    const project = copyProject('app-one', join(root, 'shared'));
    const own = { VELO_HOME: join(root, 'store-shared') }; // a store only these two use
    const s = veloUv(['sync', '--json'], env('share', own), project);
    expect(s.code, s.stderr).toBe(0);
    expect(readFileSync(join(project, 'uv.lock'), 'utf8')).toMatch(/win_amd64\.whl/);
    writeFileSync(reqs('app-deps.txt'), 'velo-app==0.3.0\nvelo-speedups==1.2.0\n');
    const venv = newVenv();
    const r = velo(['install', '-r', reqs('app-deps.txt'), '--json'], venv, 'share', own);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ distributions: 4, ingested: 0, fromStore: 4 });
  });
});

describe('bytecode', () => {
  test('none is compiled by default; what python wrote on import is harvested by the next velo uv pip command and shared', () => {
    const own = { VELO_HOME: join(root, 'store-pyc') }; // a store nothing was imported from yet
    const first = newVenv();
    const r1 = velo(['sync', reqs('greet.txt'), '--json'], first, 'pyc', own);
    expect(r1.code, r1.stderr).toBe(0);
    const pycache = (venv: string): string => join(venv, SITE, 'velo_greet', '__pycache__');
    expect(readdirSync(join(first, SITE, 'velo_greet'))).not.toContain('__pycache__');
    const imp = runPython(join(first, 'bin', 'python'), 'import velo_greet.cli; print("ok")', env('x'), root);
    expect(imp.stdout.trim(), imp.stderr).toBe('ok');
    const written = join(pycache(first), 'cli.cpython-311.pyc');
    expect(lstatSync(written).nlink, "python's own").toBe(1);

    const second = newVenv();
    const r2 = velo(['sync', reqs('greet.txt'), '--json'], second, 'pyc', own);
    expect(r2.code, r2.stderr).toBe(0);
    const j2 = JSON.parse(r2.stdout) as { bytecode: { harvested: number; replaced: number } };
    expect(j2.bytecode.harvested).toBeGreaterThanOrEqual(2); // velo_greet/__init__ and cli
    expect(j2.bytecode.replaced).toBe(j2.bytecode.harvested);
    // the second venv has the stored, hash-based file from the start; the first one's own copy became it
    const linked = join(pycache(second), 'cli.cpython-311.pyc');
    expect(readFileSync(linked).readUInt32LE(4), 'PEP 552 flags: hash-based, checked').toBe(0b11);
    expect(lstatSync(linked).ino).toBe(lstatSync(written).ino);
    for (const venv of [first, second]) {
      const v = spawnSync(join(venv, 'bin', 'python'), ['-v', '-c', 'import velo_greet.cli'], { encoding: 'utf8', env: env('x') });
      expect(v.status, v.stderr).toBe(0);
      expect(v.stderr).toContain(`# code object from '${join(pycache(venv), 'cli.cpython-311.pyc')}'`);
      expect(v.stderr).not.toMatch(/# wrote /);
    }
    const check = plain(['check'], second, 'check');
    expect(check.code, check.stdout + check.stderr).toBe(0);
  });
});

describe("uv's lock on the environment", () => {
  /** Another process holding uv's lock on `venv` (flock on <venv>/.lock, as uv takes it) until release(). */
  async function holdLock(venv: string): Promise<{ release: () => Promise<void> }> {
    const code = 'import fcntl, sys\nf = open(sys.argv[1], "a")\nfcntl.flock(f, fcntl.LOCK_EX)\nprint("held", flush=True)\nsys.stdin.read()\n';
    const child = spawn(join(venv, 'bin', 'python'), ['-c', code, join(venv, '.lock')], { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise<void>((res, rej) => {
      child.stdout.once('data', () => res());
      child.once('exit', (c) => rej(new Error(`lock holder exited ${c}`)));
    });
    return {
      release: () =>
        new Promise<void>((res) => {
          child.once('exit', () => res());
          child.stdin.end();
        }),
    };
  }

  function finished(child: ReturnType<typeof veloUvChild>): Promise<{ code: number; stdout: string; stderr: string; at: number }> {
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    return new Promise((res) => child.once('exit', (c) => res({ code: c ?? -1, stdout, stderr, at: Date.now() })));
  }

  test('velo uv pip sync waits while another process holds it, and changes nothing until then', async () => {
    const warm = newVenv();
    expect(velo(['sync', reqs('requirements.txt')], warm, 'lock').code).toBe(0); // the store holds it all: velo alone takes ~1 s
    const venv = newVenv();
    const holder = await holdLock(venv);
    // the holder holds the lock uv itself takes: a uv pip command gives up waiting for it after UV_LOCK_TIMEOUT
    const u = runUvCli(['-v', 'pip', 'uninstall', '--python', join(venv, 'bin', 'python'), 'velo-greet'], env('lock', { UV_LOCK_TIMEOUT: '1' }), root);
    expect(u.stderr).toMatch(/Failed to acquire environment lock: Timeout/);
    const run = finished(veloUvChild(['pip', 'sync', reqs('requirements.txt'), '--python', join(venv, 'bin', 'python'), '--json'], env('lock'), root));
    await new Promise((r) => setTimeout(r, 4000));
    // while the lock is held velo has not touched the venv: no staging, nothing installed
    expect(readdirSync(venv).filter((n) => n.startsWith('.velo-pip-stage-'))).toEqual([]);
    expect(freeze(venv)).toEqual([]);
    const releasedAt = Date.now();
    await holder.release();
    const r = await run;
    expect(r.code, r.stderr).toBe(0);
    expect(r.at).toBeGreaterThanOrEqual(releasedAt);
    expect(JSON.parse(r.stdout)).toMatchObject({ distributions: 4, fromStore: 4 });
    expect(freeze(venv)).toEqual(freeze(warm));
  });

  test('after UV_LOCK_TIMEOUT velo stops with exit 7 and says why, the venv untouched', async () => {
    const venv = newVenv();
    const holder = await holdLock(venv);
    const before = listEnvFiles(venv);
    try {
      const r = velo(['sync', reqs('requirements.txt')], venv, 'lock', { UV_LOCK_TIMEOUT: '1' });
      expect(r.code, r.stderr).toBe(7);
      expect(r.stderr).toContain(join(venv, '.lock'));
      expect(r.stderr).toMatch(/another uv process is changing/);
      expect(r.stderr).toMatch(/UV_LOCK_TIMEOUT/);
    } finally {
      await holder.release();
    }
    expect(listEnvFiles(venv)).toEqual(before);
  });
});
