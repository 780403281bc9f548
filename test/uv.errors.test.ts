/**
 * velo uv sync on bad input: a clear error naming the problem, and the
 * previous .venv left exactly as it was. Real uv, real python, the loopback
 * index; the RECORD checks are also exercised directly on crafted installs.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { copyProject, runPython, runUvCli, settle, veloUv, veloUvChild, type PyIndex } from '../fixtures/uv/harness.js';
import { readInstalledDistribution } from '../src/uv/installedDistribution.js';
import { VeloError } from '../src/errors.js';
import { tempDirs } from './support/tmp.js';
import { startUvIndexSandbox, stopUvIndexSandbox, uvSandboxEnv } from './support/uvIndexSandbox.js';

const tmp = tempDirs('velo-uv-errors-');
let root: string;
let python: string;
let index: PyIndex;
let veloHome: string;
let wheels: string;
const SITE = 'lib/python3.11/site-packages';

function env(cache: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return uvSandboxEnv({ root, python, veloHome, index }, cache, extra);
}

function pyproject(dir: string, name: string, deps: string[]): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'pyproject.toml'),
    `[project]\nname = "${name}"\nversion = "0.1.0"\nrequires-python = ">=3.9"\ndependencies = [${deps.map((d) => JSON.stringify(d)).join(', ')}]\n`,
  );
}

function lock(dir: string): void {
  const r = runUvCli(['lock'], env('lock'), dir);
  expect(r.code, r.stderr).toBe(0);
}

/** A project with a working environment (velo-greet only), synced by velo. */
function projectWithEnv(name: string): string {
  const dir = join(root, 'projects', name);
  pyproject(dir, name, ['velo-greet']);
  lock(dir);
  const r = veloUv(['sync', '--locked'], env('ok'), dir);
  expect(r.code, r.stderr).toBe(0);
  return dir;
}

interface EnvSnapshot {
  state: string;
  entries: string[];
  inode: bigint;
}

function snapshot(dir: string): EnvSnapshot {
  const venv = join(dir, '.venv');
  return {
    state: readFileSync(join(venv, '.velo-state'), 'utf8'),
    entries: readdirSync(join(venv, SITE)).sort(),
    inode: statSync(venv, { bigint: true }).ino,
  };
}

/** The environment is the one we snapshotted, and it still works. */
function expectIntact(dir: string, before: EnvSnapshot): void {
  expect(snapshot(dir)).toEqual(before);
  const r = runPython(join(dir, '.venv', 'bin', 'python'), 'import velo_greet; print(velo_greet.greet("still"))', env('ok'), dir);
  expect(r.stdout).toBe('hello, still\n');
  expect(readdirSync(dir).filter((n) => n.includes('velo-new') || n.includes('velo-old'))).toEqual([]);
}

beforeAll(async () => {
  root = tmp();
  ({ python, veloHome, wheels, index } = await startUvIndexSandbox(root));
});

afterAll(() => stopUvIndexSandbox(index, root));

describe('velo uv sync refuses bad input and keeps the previous .venv', () => {
  test('a malformed uv.lock: the file, the line and the problem', () => {
    const dir = projectWithEnv('malformed');
    const before = snapshot(dir);
    const lockPath = join(dir, 'uv.lock');
    const text = readFileSync(lockPath, 'utf8');
    const broken = text.replace('name = "velo-greet"', 'name = "velo-greet');
    const upTo = broken.slice(0, broken.indexOf('name = "velo-greet')).split('\n');
    const line = upTo.length;
    const column = broken.split('\n')[line - 1]!.length + 1; // the end of the line, where the string should have closed
    writeFileSync(lockPath, broken);

    // exit 2 and the problem, as `uv sync --frozen` exits on it
    const frozen = veloUv(['sync', '--frozen'], env('ok'), dir);
    expect(frozen.code).toBe(2);
    expect(frozen.stderr).toContain(`velo: ${lockPath} is not a valid uv.lock: line ${line}, column ${column}: control characters are not allowed in strings`);
    expect(frozen.stderr).toContain('hint: regenerate it with `uv lock`');
    expectIntact(dir, before);

    // without --frozen, uv reads the lock first: uv's exit code and uv's own words, not "stale"
    const locking = veloUv(['sync', '--json'], env('ok'), dir);
    expect(locking.code).toBe(2);
    const e = JSON.parse(locking.stdout) as { error: { code: string; message: string } };
    expect(e.error.code).toBe('TOOL_FAILED');
    expect(e.error.message).toMatch(/^uv lock failed: `.*uv lock` exited with code 2:/);
    expect(e.error.message).toMatch(/Failed to parse `uv\.lock`/);
    expectIntact(dir, before);
    const locked = veloUv(['sync', '--locked'], env('ok'), dir);
    expect(locked.code).toBe(2);
    expect(locked.stderr).toMatch(/^velo: uv lock --check failed: `.*uv lock --check` exited with code 2:/m);
    expect(locked.stderr).toMatch(/Failed to parse `uv\.lock`/);
    expect(locked.stderr).not.toMatch(/not up to date/);
    expectIntact(dir, before);

    // a lock that parses but is not a uv.lock velo understands
    writeFileSync(lockPath, text.replace(/source = \{ registry = "[^"]*" \}/, 'source = { }'));
    const odd = veloUv(['sync', '--frozen'], env('ok'), dir);
    expect(odd.code).toBe(2);
    expect(odd.stderr).toMatch(/package "velo-greet" has a source with no known kind/);
    expectIntact(dir, before);
  });

  test('a wheel whose RECORD does not match its files', () => {
    const dir = projectWithEnv('bad-record');
    const before = snapshot(dir);
    cpSync(join(__dirname, '..', 'fixtures', 'uv', 'projects', 'bad-record', 'pyproject.toml'), join(dir, 'pyproject.toml'));
    lock(dir);
    const r = veloUv(['sync', '--locked'], env('bad-record'), dir);
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toMatch(/^velo: velo-badrecord 1\.0\.0: velo_badrecord\/__init__\.py does not match its RECORD \(sha256 [\w-]+, RECORD says [\w-]+\)$/m);
    expectIntact(dir, before);
    // nothing of it was kept: the next try checks it again
    const again = veloUv(['sync', '--locked'], env('bad-record'), dir);
    expect(again.code).toBe(6);
  });

  test('a wheel with paths that escape the environment', () => {
    const outside = ['/tmp/velo-escape-fixture-absolute.txt'];
    for (const f of outside) rmSync(f, { force: true });
    const dir = copyProject('escape', join(root, 'projects'));
    lock(dir);
    const r = veloUv(['sync', '--locked', '--json'], env('escape'), dir);
    // uv already refuses to unpack such members (it skips them); velo checks every RECORD path again
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const f of outside) expect(existsSync(f), f).toBe(false);
    const stray = (d: string): string[] => readdirSync(d, { recursive: true, encoding: 'utf8' }).filter((n) => n.includes('velo-escaped'));
    expect(stray(root)).toEqual([]);
    const record = readFileSync(join(dir, '.venv', SITE, 'velo_escape-1.0.0.dist-info', 'RECORD'), 'utf8');
    expect(record).not.toMatch(/etc\/hostname|velo-escaped/);
  });

  test('RECORD paths outside the environment, absolute paths and symlinks are refused', async () => {
    const envDir = join(root, 'crafted');
    const sp = join(envDir, SITE);
    const make = (name: string, record: string): string => {
      const distInfo = `${name}-1.0.dist-info`;
      mkdirSync(join(sp, distInfo), { recursive: true });
      writeFileSync(join(sp, distInfo, 'METADATA'), `Metadata-Version: 2.1\nName: ${name}\nVersion: 1.0\n`);
      writeFileSync(join(sp, distInfo, 'RECORD'), record);
      return distInfo;
    };
    const read = (distInfo: string): Promise<unknown> =>
      readInstalledDistribution(distInfo, { envDir, sitePackages: SITE, python: join(envDir, 'bin', 'python') });
    const fails = async (distInfo: string, code: string, message: RegExp): Promise<void> => {
      const e = await read(distInfo).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(VeloError);
      expect((e as VeloError).code).toBe(code);
      expect((e as VeloError).message).toMatch(message);
    };
    await fails(make('climb', '../../../../../../../../etc/hostname,,\n'), 'UNSAFE_PATH', /^climb 1\.0: RECORD lists "\.\.\/.*etc\/hostname", which resolves outside the environment/);
    await fails(make('absolute', '/etc/hostname,,\n'), 'UNSAFE_PATH', /^absolute 1\.0: RECORD lists the absolute path "\/etc\/hostname"/);
    mkdirSync(join(sp, 'linky'), { recursive: true });
    symlinkSync('/etc/hostname', join(sp, 'linky', 'data.txt'));
    await fails(make('linky', 'linky/data.txt,,\n'), 'UNSAFE_PATH', /^linky 1\.0: linky\/data\.txt is a symlink/);
    await fails(make('ghost', 'ghost/missing.py,,\n'), 'INTEGRITY', /^ghost 1\.0: RECORD lists ghost\/missing\.py, but it was not installed/);
    mkdirSync(join(sp, 'sized'), { recursive: true });
    writeFileSync(join(sp, 'sized', 'a.py'), 'x = 1\n');
    await fails(make('sized', 'sized/a.py,,99\n'), 'INTEGRITY', /^sized 1\.0: sized\/a\.py is 6 bytes, its RECORD says 99/);
    // and one that is fine, with a data file and a launcher naming this environment's python
    mkdirSync(join(envDir, 'bin'), { recursive: true });
    writeFileSync(join(envDir, 'bin', 'tool'), `#!${join(envDir, 'bin', 'python')}\nprint(1)\n`, { mode: 0o755 });
    const ok = (await read(make('fine', '../../../bin/tool,,\nsized/a.py,,\n'))) as { files: { rel: string; role: string }[] };
    expect(ok.files.map((f) => [f.rel, f.role])).toEqual([
      ['bin/tool', 'launcher'],
      [`${SITE}/sized/a.py`, 'shared'],
    ]);
  });

  test('uv failing: a stale lock with --locked, a wheel the index no longer has', async () => {
    const dir = projectWithEnv('uv-fails');
    const before = snapshot(dir);
    pyproject(dir, 'uv-fails', ['velo-greet', 'velo-data']);
    const stale = veloUv(['sync', '--locked'], env('ok'), dir);
    expect(stale.code).toBe(1); // uv's exit code
    expect(stale.stderr).toMatch(/velo: uv\.lock is not up to date: `.*uv lock --check` exited with code 1/);
    expect(stale.stderr).toMatch(/needs to be updated/);
    expectIntact(dir, before);

    // a fresh store and uv cache, and the index lost the wheel: uv cannot fetch it
    lock(dir);
    const moved = join(root, 'moved.whl');
    cpSync(join(wheels, 'velo_data-2.1.0-py3-none-any.whl'), moved);
    rmSync(join(wheels, 'velo_data-2.1.0-py3-none-any.whl'));
    try {
      const r = veloUv(['sync', '--locked'], env('empty-cache', { VELO_HOME: join(root, 'other-store') }), dir);
      expect(r.code).toBe(1); // uv's exit code
      expect(r.stderr).toMatch(/velo: uv sync failed: .* exited with code \d+:/);
      expect(r.stderr).toMatch(/velo-data/);
      expectIntact(dir, before);
    } finally {
      cpSync(moved, join(wheels, 'velo_data-2.1.0-py3-none-any.whl'));
    }
  });

  test('a hash in uv.lock that the downloaded wheel does not have: uv\'s exit code and message, not "stale"', () => {
    const dir = projectWithEnv('hash-mismatch');
    const before = snapshot(dir);
    pyproject(dir, 'hash-mismatch', ['velo-greet', 'velo-data']);
    lock(dir);
    const lockPath = join(dir, 'uv.lock');
    const text = readFileSync(lockPath, 'utf8');
    const m = /(velo_data-2\.1\.0-py3-none-any\.whl", hash = "sha256:)([0-9a-f])/.exec(text);
    expect(m).not.toBeNull();
    const wrong = m![2] === '0' ? '1' : '0';
    writeFileSync(lockPath, text.replace(m![0], m![1] + wrong));
    const r = veloUv(['sync', '--locked'], env('hash-mismatch', { VELO_HOME: join(root, 'hash-store') }), dir);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^velo: uv sync failed: `.*` exited with code 1:/m);
    expect(r.stderr).toMatch(/Hash mismatch for `velo-data==2\.1\.0`/);
    expect(r.stderr).not.toMatch(/not up to date/);
    expectIntact(dir, before);
  });

  test('killed half-way: the previous .venv stays, the next run cleans up and finishes', async () => {
    const dir = projectWithEnv('killed');
    const before = snapshot(dir);
    pyproject(dir, 'killed', ['velo-greet', 'velo-data', 'velo-speedups']);
    lock(dir);
    const child = veloUvChild(['sync', '--locked'], env('ok', { VELO_TEST_PAUSE_BEFORE_SWAP_MS: '60000' }), dir);
    let stderr = '';
    await new Promise<void>((resolve, reject) => {
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes('pausing')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`velo exited (${code}) before the swap: ${stderr}`)));
    });
    const staged = readdirSync(dir).filter((n) => n.startsWith('..venv.velo-new-'));
    expect(staged).toHaveLength(1);
    expect(existsSync(join(dir, staged[0]!, SITE, 'velo_speedups', '__init__.py'))).toBe(true);
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    // the old environment is untouched; the half-built one is left beside it (uv's scratch
    // environment is gone already: the new environment is a tree in the store by then)
    expect(snapshot(dir)).toEqual(before);
    expect(existsSync(join(dir, staged[0]!))).toBe(true);

    const r = veloUv(['sync', '--locked'], env('ok'), dir);
    expect(r.code, r.stderr).toBe(0);
    await settle(dir);
    expect(readdirSync(dir).filter((n) => n.includes('velo-new') || n.includes('velo-old'))).toEqual([]);
    expect(readdirSync(join(veloHome, 'tmp')).filter((n) => n.startsWith('uv-sync.'))).toEqual([]);
    const imp = runPython(join(dir, '.venv', 'bin', 'python'), 'import velo_data, velo_speedups; print(velo_speedups.add_all(1, 1))', env('ok'), dir);
    expect(imp.stdout).toBe('2\n');
  });

  test('usage errors: no project, unsupported arguments', () => {
    const empty = join(root, 'empty');
    mkdirSync(empty, { recursive: true });
    const none = veloUv(['sync'], env('ok'), empty);
    expect(none.code).toBe(3);
    expect(none.stderr).toMatch(/velo: no pyproject\.toml in .*empty or any parent directory/);
    const dir = projectWithEnv('usage');
    const inexact = veloUv(['sync', '--inexact'], env('ok'), dir);
    expect(inexact.code).toBe(2);
    expect(inexact.stderr).toMatch(/velo uv sync does not take --inexact: velo builds the environment whole/);
    const other = veloUv(['add', 'x'], env('ok'), dir);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/unknown uv command "add"/);
    // an environment path that holds something else is never replaced
    const precious = join(root, 'precious');
    mkdirSync(precious, { recursive: true });
    writeFileSync(join(precious, 'keep.txt'), 'mine\n');
    const refused = veloUv(['sync'], env('ok', { UV_PROJECT_ENVIRONMENT: precious }), dir);
    expect(refused.code).toBe(16);
    expect(refused.stderr).toMatch(/velo: .*precious exists and is not a virtual environment \(no pyvenv\.cfg\)/);
    expect(readdirSync(precious)).toEqual(['keep.txt']);
  });
});
