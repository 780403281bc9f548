/**
 * A new checkout without uv: velo plans from uv.lock (markers, extras,
 * dependency groups) and lays the environment out from the store — checked
 * against real uv: the same packages `uv sync --dry-run` would install for
 * every argument combination, the same environment `uv sync` builds, and
 * `uv sync --locked --check` clean afterwards. Markers and PEP 440
 * comparisons are also checked directly.
 */
import { cpSync, lstatSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { copyProject, loggedUv, runPython, runUvCli, veloUv, VERIFY_RECORDS, type PyIndex } from '../fixtures/uv/harness.js';
import { evaluateMarker, satisfiesSpecifiers, versionMatches, type MarkerEnvironment } from '../src/uv/markers.js';
import { planFromLock } from '../src/uv/lockPlan.js';
import { readUvLock } from '../src/uv/uvLock.js';
import { tempDirs } from './support/tmp.js';
import { expectSameEnvFiles } from './support/uvEnvFiles.js';
import { startUvIndexSandbox, stopUvIndexSandbox, uvSandboxEnv } from './support/uvIndexSandbox.js';

const LINUX: MarkerEnvironment = {
  implementation_name: 'cpython',
  implementation_version: '3.11.7',
  os_name: 'posix',
  platform_machine: 'x86_64',
  platform_python_implementation: 'CPython',
  platform_release: '6.1.0',
  platform_system: 'Linux',
  platform_version: '#1 SMP',
  python_full_version: '3.11.7',
  python_version: '3.11',
  sys_platform: 'linux',
};

describe('markers and versions', () => {
  test('PEP 508 markers as uv.lock writes them', () => {
    expect(evaluateMarker("sys_platform == 'win32'", LINUX)).toBe(false);
    expect(evaluateMarker("sys_platform != 'win32'", LINUX)).toBe(true);
    expect(evaluateMarker("python_full_version < '3.12'", LINUX)).toBe(true);
    expect(evaluateMarker("python_full_version >= '3.11.8'", LINUX)).toBe(false);
    expect(evaluateMarker("python_version >= '3.11' and (platform_machine == 'aarch64' or platform_machine == 'x86_64')", LINUX)).toBe(true);
    expect(evaluateMarker("(sys_platform == 'darwin' or sys_platform == 'win32') and python_full_version < '3.13'", LINUX)).toBe(false);
    expect(evaluateMarker("'linux' in sys_platform", LINUX)).toBe(true);
    expect(evaluateMarker("platform_machine not in 'arm64 aarch64'", LINUX)).toBe(true);
    expect(evaluateMarker("'3.10' < python_version", LINUX)).toBe(true);
    expect(evaluateMarker("python_version == '3.11.*'", LINUX)).toBe(true);
    expect(() => evaluateMarker("extra == 'extra-4-demo-cpu'", LINUX)).toThrow(/marker variable extra/);
    expect(() => evaluateMarker("sys_platform == 'linux' and", LINUX)).toThrow();
  });

  test('PEP 440 ordering: pre-releases, post and dev releases, wildcards, ~=', () => {
    expect(versionMatches('3.13.0rc1', '<', '3.13')).toBe(true);
    expect(versionMatches('3.13.0', '>=', '3.13.0rc1')).toBe(true);
    expect(versionMatches('1.0.post1', '>', '1.0')).toBe(true);
    expect(versionMatches('1.0.dev1', '<', '1.0a1')).toBe(true);
    expect(versionMatches('3.11.7', '~=', '3.11.2')).toBe(true);
    expect(versionMatches('3.12.0', '~=', '3.11.2')).toBe(false);
    expect(versionMatches('3.11.7', '!=', '3.11.*')).toBe(false);
    expect(satisfiesSpecifiers('3.11.7', '>=3.9, <4')).toBe(true);
    expect(satisfiesSpecifiers('3.8.10', '>=3.9')).toBe(false);
  });
});

const tmp = tempDirs('velo-uv-newcheckout-');
let root: string;
let python: string;
let index: PyIndex;
let veloHome: string;
const SITE = 'lib/python3.11/site-packages';

function env(cache: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...uvSandboxEnv({ root, python, veloHome, index }, cache), ...extra };
}

beforeAll(async () => {
  root = tmp();
  ({ python, veloHome, index } = await startUvIndexSandbox(root));
});

afterAll(() => stopUvIndexSandbox(index, root));

/** A virtual project (no build system) with markers, extras and groups over the fixture packages. */
function selectiveProject(dir: string, defaultGroups?: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'pyproject.toml'),
    `[project]
name = "Selective_App"
version = "0.1.0"
requires-python = ">=3.9"
dependencies = [
  "velo-greet",
  "velo-data; sys_platform == 'win32'",
  "velo-speedups; python_version >= '3.9' and platform_system == 'Linux'",
]

[project.optional-dependencies]
app = ["velo-app"]
windows = ["velo-data; sys_platform == 'win32'"]

[dependency-groups]
dev = ["velo-data; python_version < '3.20'"]
lint = ["velo-app"]
${defaultGroups ? `\n[tool.uv]\ndefault-groups = ${defaultGroups}\n` : ''}`,
  );
  const r = runUvCli(['lock'], env('lock'), dir);
  expect(r.code, r.stderr).toBe(0);
  return dir;
}

/** What `uv sync` would install into a new environment, by name (uv's own answer). */
function uvWouldInstall(dir: string, args: string[]): string[] {
  const r = runUvCli(['sync', '--frozen', '--dry-run', '--output-format', 'json', ...args], env('dry', { UV_PROJECT_ENVIRONMENT: join(root, 'never') }), dir);
  expect(r.code, r.stderr).toBe(0);
  const j = JSON.parse(r.stdout) as { sync?: { changes?: { name: string; action: string }[] } };
  return (j.sync?.changes ?? []).filter((c) => c.action === 'installed').map((c) => c.name).sort();
}

describe('planning from uv.lock', () => {
  test('installs what uv sync would, for extras, groups and markers', () => {
    const markers = JSON.parse(runPython(python, `import json, os, platform, sys
print(json.dumps({"implementation_name": sys.implementation.name, "implementation_version": platform.python_version(), "os_name": os.name,
 "platform_machine": platform.machine(), "platform_python_implementation": platform.python_implementation(), "platform_release": platform.release(),
 "platform_system": platform.system(), "platform_version": platform.version(), "python_full_version": platform.python_version(),
 "python_version": ".".join(platform.python_version_tuple()[:2]), "sys_platform": sys.platform}))`, env('x'), root).stdout) as MarkerEnvironment;
    const dir = selectiveProject(join(root, 'selective'));
    const lock = readUvLock(join(dir, 'uv.lock'));
    const combos: string[][] = [
      [],
      ['--no-dev'],
      ['--extra', 'app'],
      ['--all-extras'],
      ['--all-extras', '--no-extra', 'app'],
      ['--group', 'lint'],
      ['--all-groups', '--no-dev'],
      ['--no-default-groups'],
      ['--only-group', 'lint'],
      ['--only-dev'],
      ['--no-install-package', 'velo-greet'],
      ['--extra', 'windows', '--no-install-project'],
    ];
    for (const args of combos) {
      const plan = planFromLock(lock, dir, dir, args, markers);
      expect('packages' in plan, `${args.join(' ')}: ${JSON.stringify(plan)}`).toBe(true);
      if (!('packages' in plan)) continue;
      expect(plan.packages.map((p) => p.name).sort(), args.join(' ') || '(no arguments)').toEqual(uvWouldInstall(dir, args));
    }
    // tool.uv.default-groups
    const dg = selectiveProject(join(root, 'default-groups'), '["lint"]');
    const dgLock = readUvLock(join(dg, 'uv.lock'));
    for (const args of [[], ['--no-group', 'lint'], ['--group', 'dev']]) {
      const plan = planFromLock(dgLock, dg, dg, args, markers);
      expect('packages' in plan && plan.packages.map((p) => p.name).sort(), args.join(' ')).toEqual(uvWouldInstall(dg, args));
    }
    // what velo leaves to uv: an argument it does not model, a group uv would refuse, an installed project
    expect(planFromLock(lock, dir, dir, ['--package', 'x'], markers)).toEqual({ unsupported: 'velo does not plan --package itself' });
    expect(planFromLock(lock, dir, dir, ['--group', 'nope'], markers)).toMatchObject({ unsupported: expect.stringMatching(/group nope/) });
    const one = copyProject('app-one', join(root, 'plan-one'));
    expect(runUvCli(['lock'], env('lock'), one).code).toBe(0);
    expect(planFromLock(readUvLock(join(one, 'uv.lock')), one, one, [], markers)).toEqual({ unsupported: 'the project is installed itself' });
  });
});

/** The environment at dir/.venv is the one uv built at uvDir/.venv: same files, modes and bytes (modulo the path); uv agrees. */
function expectAsUvBuilt(dir: string, uvDir: string): void {
    const mine = join(dir, '.venv');
    const theirs = join(uvDir, '.venv');
    expectSameEnvFiles(mine, theirs, uvDir, dir);
    expect(readFileSync(join(mine, 'pyvenv.cfg'), 'utf8')).toMatch(/^prompt = selective-app$/m);
    expect(readFileSync(join(mine, 'bin', 'activate'), 'utf8')).toContain(`VIRTUAL_ENV='${mine}'`);
    // shared files are the store's; the launcher is this environment's own and runs
    expect(lstatSync(join(mine, SITE, 'velo_greet', 'cli.py')).nlink).toBeGreaterThan(1);
    expect(lstatSync(join(mine, 'bin', 'velo-greet')).nlink).toBe(1);
    const greet = spawnSync(join(mine, 'bin', 'velo-greet'), ['new'], { encoding: 'utf8', env: env('x') });
    expect(greet.status, greet.stderr).toBe(0);
    expect(readFileSync(join(mine, 'bin', 'velo-greet'), 'utf8').split('\n')[0]).toBe(`#!${mine}/bin/python`);

    // uv agrees: nothing to do
    const check = runUvCli(['sync', '--locked', '--all-extras', '--check'], env('second-empty'), dir);
    expect(check.code, check.stderr).toBe(0);
    expect(check.stderr).toMatch(/Would make no changes/);
    const pipCheck = runUvCli(['pip', 'check', '--python', join(mine, 'bin', 'python')], env('second-empty'), dir);
    expect(pipCheck.code, pipCheck.stdout + pipCheck.stderr).toBe(0);
    // and every RECORD lists what is there, with the right hashes (the launchers' included)
    const records = runPython(join(mine, 'bin', 'python'), VERIFY_RECORDS, env('x'), dir);
    expect(records.code, records.stderr).toBe(0);
    expect(JSON.parse(records.stdout)).toMatchObject({ bad: [] });
}


describe('velo uv sync in a new checkout', () => {
  test('what the store holds is laid out from uv.lock with no uv sync, as uv would, and uv agrees', async () => {
    // the first checkout goes through uv once: the distributions and the bare venv are recorded
    const first = selectiveProject(join(root, 'checkouts', 'first'));
    const uv = loggedUv(join(root, 'uv-log-newcheckout')); // the same uv binary for both (the venv recorded is uv's)
    const r1 = veloUv(['sync', '--locked', '--json', '--all-extras'], env('first', { VELO_UV: uv.path }), first);
    expect(r1.code, r1.stderr).toBe(0);
    expect(JSON.parse(r1.stdout)).toMatchObject({ plannedBy: 'uv' });

    // a new checkout (another path: nothing recorded for it) with an empty uv cache
    const second = join(root, 'checkouts', 'second');
    mkdirSync(second, { recursive: true });
    for (const f of ['pyproject.toml', 'uv.lock']) cpSync(join(first, f), join(second, f));
    await index.clear();
    const n = uv.calls().length;
    const r2 = veloUv(['sync', '--locked', '--json', '--all-extras'], env('second-empty', { VELO_UV: uv.path }), second);
    expect(r2.code, r2.stderr).toBe(0);
    const j2 = JSON.parse(r2.stdout) as Record<string, unknown>;
    expect(j2, String(j2.planNote)).toMatchObject({ plannedBy: 'uv.lock', fromEnvironmentManifest: false, distributions: 4, fromStore: 4, ingested: 0, newObjects: 0 });
    expect(j2.planNote).toBeUndefined();
    // uv only said which python it would use (this lock passed `uv lock --check` with the same inputs in
    // the first checkout, so it is not asked again); nothing was downloaded
    expect(uv.calls().slice(n).map((c) => c.split(' ').slice(0, 2).join(' '))).toEqual(['python find']);
    expect(await index.downloads()).toEqual([]);

    // the same environment uv builds, file for file, byte for byte (modulo the path)
    const third = join(root, 'checkouts', 'third');
    mkdirSync(third, { recursive: true });
    for (const f of ['pyproject.toml', 'uv.lock']) cpSync(join(first, f), join(third, f));
    const u = runUvCli(['sync', '--locked', '--all-extras'], env('uv-only'), third);
    expect(u.code, u.stderr).toBe(0);
    expectAsUvBuilt(second, third);

    // a further checkout: the path-independent part recorded by the last one is linked as it is
    const fourth = join(root, 'checkouts', 'fourth');
    mkdirSync(fourth, { recursive: true });
    for (const f of ['pyproject.toml', 'uv.lock']) cpSync(join(first, f), join(fourth, f));
    const r4 = veloUv(['sync', '--locked', '--json', '--all-extras'], env('second-empty', { VELO_UV: uv.path }), fourth);
    expect(r4.code, r4.stderr).toBe(0);
    const j4 = JSON.parse(r4.stdout) as { bytecode: { harvested: number } };
    // plus the bytecode python wrote in the second checkout while it was checked, harvested by this sync
    expect(j4).toMatchObject({ plannedBy: 'uv.lock', distributions: 4, files: (j2.files as number) + j4.bytecode.harvested });
    expectAsUvBuilt(fourth, third);

    // other arguments: still planned from uv.lock; uv agrees again
    rmSync(join(second, '.venv'), { recursive: true });
    const r3 = veloUv(['sync', '--frozen', '--json', '--no-dev'], env('second-empty', { VELO_UV: uv.path }), second);
    expect(JSON.parse(r3.stdout), r3.stdout).toMatchObject({ plannedBy: 'uv.lock', distributions: 2 });
    // a checkout whose pyproject.toml no longer matches its lock is asked about again, and is stale
    const stale = join(root, 'checkouts', 'stale');
    mkdirSync(stale, { recursive: true });
    cpSync(join(first, 'uv.lock'), join(stale, 'uv.lock'));
    writeFileSync(join(stale, 'pyproject.toml'), readFileSync(join(first, 'pyproject.toml'), 'utf8').replace('"velo-greet",', '"velo-greet", "velo-escape",'));
    const rs = veloUv(['sync', '--locked'], env('second-empty', { VELO_UV: uv.path }), stale);
    expect(rs.code).toBe(1);
    expect(rs.stderr).toMatch(/velo: uv\.lock is not up to date/);
    const check3 = runUvCli(['sync', '--locked', '--no-dev', '--check'], env('second-empty'), second);
    expect(check3.code, check3.stderr).toBe(0);
    expect(check3.stderr).toMatch(/Would make no changes/);
  });

  test('what the store lacks, and what velo does not plan, goes through uv', () => {
    // a project that installs itself (editable): uv plans, and says why
    const one = copyProject('app-one', join(root, 'checkouts2'), 'one');
    expect(runUvCli(['lock'], env('lock'), one).code).toBe(0);
    const r = veloUv(['sync', '--frozen', '--json'], env('one'), one);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ plannedBy: 'uv', planNote: 'the project is installed itself' });
    // a new lock entry the store has never seen: uv installs it (and the rest comes from the store)
    const two = copyProject('app-two', join(root, 'checkouts2'), 'two');
    expect(runUvCli(['lock'], env('lock'), two).code).toBe(0);
    const first = veloUv(['sync', '--frozen', '--json'], env('two'), two);
    expect(JSON.parse(first.stdout), first.stdout).toMatchObject({ plannedBy: 'uv' });
    const pyproject = readFileSync(join(two, 'pyproject.toml'), 'utf8');
    writeFileSync(join(two, 'pyproject.toml'), pyproject.replace('"velo-speedups"]', '"velo-speedups", "velo-escape"]'));
    expect(runUvCli(['lock'], env('lock'), two).code).toBe(0);
    const more = veloUv(['sync', '--frozen', '--json'], env('two'), two);
    const j = JSON.parse(more.stdout) as Record<string, unknown>;
    expect(j).toMatchObject({ plannedBy: 'uv' });
    expect(String(j.planNote)).toMatch(/^the store lacks uv:velo-escape==1\.0\.0@/);
    // and then it has it
    rmSync(join(two, '.venv'), { recursive: true });
    const moved = join(root, 'checkouts2', 'two-moved');
    // an old .venv velo is still deleting in the background is no part of the checkout
    cpSync(two, moved, { recursive: true, filter: (src) => !/\.velo-(old|new)-/.test(src) });
    const again = veloUv(['sync', '--frozen', '--json'], env('two'), moved);
    expect(JSON.parse(again.stdout)).toMatchObject({ plannedBy: 'uv.lock', distributions: 4 });
  });
});
