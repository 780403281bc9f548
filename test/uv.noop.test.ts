/**
 * The native launcher (native/build/velo-launch, run by the bin) answering
 * an unchanged `velo uv sync` without Node: the same answer as velo's own
 * no-op (stdout, stderr, exit code, plain and --json), and Node — a real
 * sync — for every change the no-op check detects, for a state file of
 * another format and for everything the launcher does not model. Whether
 * Node ran is seen through NODE_OPTIONS=--require of a script that leaves a
 * mark: velo itself knows nothing of the test.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { copyProject, REPO_ROOT, UV, runUvCli, type PyIndex } from '../fixtures/uv/harness.js';
import { unmountAll } from '../src/mount/mount.js';
import { Store } from '../src/store/store.js';
import { LINK_METHODS, PROJECTIONS } from '../src/config.js';
import { ECOSYSTEMS } from '../src/project/detect.js';
import { SETTINGS_IGNORED } from '../src/uv/envState.js';
import { FORCE_FULL, NOT_IN_FINGERPRINT, REFUSED, VALUE_OPTIONS } from '../src/uv/syncArgs.js';
import { killLeftoverServers } from './support/mountSandbox.js';
import { tempDirs } from './support/tmp.js';
import { startUvIndexSandbox, stopUvIndexSandbox, uvSandboxEnv } from './support/uvIndexSandbox.js';

const tmp = tempDirs('velo-uv-noop-');
const BUNDLE_BIN = join(REPO_ROOT, 'dist', 'bundle', 'velo');
const CLONE_BIN = join(REPO_ROOT, 'bin', 'velo');
const LAUNCHER = join(REPO_ROOT, 'native', 'build', 'velo-launch');
let root: string;
let python: string;
let index: PyIndex;
let veloHome: string;
let markFile: string;
let marker: string;
let project: string;

interface Answer {
  code: number;
  stdout: string;
  stderr: string;
  /** Node started for this run */
  node: boolean;
}

function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const base = uvSandboxEnv({ root, python, veloHome, index }, 'noop');
  // the node running these tests first on PATH: the launcher execs it, and it wrote the state
  return { ...base, PATH: `${dirname(process.execPath)}:${base.PATH ?? ''}`, NODE_OPTIONS: `--require=${marker}`, ...extra };
}

/** `velo uv sync <args>` through a bin (the bundle's shell script by default), as a user runs it. */
function run(args: string[], extra: NodeJS.ProcessEnv = {}, opts: { bin?: string; cwd?: string } = {}): Answer {
  writeFileSync(markFile, '');
  const r = spawnSync(opts.bin ?? BUNDLE_BIN, ['uv', 'sync', ...args], { env: env(extra), cwd: opts.cwd ?? project, encoding: 'utf8', timeout: 180_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, node: readFileSync(markFile, 'utf8').length > 0 };
}

/** The same arguments answered by Node (VELO_NO_LAUNCHER=1): what the launcher must print. */
function byNode(args: string[], extra: NodeJS.ProcessEnv = {}, opts: { bin?: string; cwd?: string } = {}): Answer {
  const r = run(args, { ...extra, VELO_NO_LAUNCHER: '1' }, opts);
  expect(r.node).toBe(true);
  return r;
}

/** The launcher answered (no Node), exactly as Node answers. */
function expectLauncherNoop(args: string[], extra: NodeJS.ProcessEnv = {}, opts: { bin?: string; cwd?: string } = {}): Answer {
  const node = byNode(args, extra, opts);
  expect(node.code, node.stderr).toBe(0);
  expect(node.stdout).toMatch(args.includes('--json') ? /"noop": true/ : /is up to date/);
  const fast = run(args, extra, opts);
  expect(fast.node, 'Node started: the launcher did not answer').toBe(false);
  expect({ code: fast.code, stdout: fast.stdout, stderr: fast.stderr }).toEqual({ code: node.code, stdout: node.stdout, stderr: node.stderr });
  return fast;
}

/** Node ran (the launcher fell through) and synced: not a no-op. */
function expectRealSync(args: string[], extra: NodeJS.ProcessEnv = {}, opts: { bin?: string; cwd?: string } = {}): void {
  const r = run(['--json', ...args], extra, opts);
  expect(r.code, r.stderr + r.stdout).toBe(0);
  expect(r.node).toBe(true);
  expect(JSON.parse(r.stdout)).toMatchObject({ noop: false });
}

function touch(path: string): void {
  const t = new Date(Date.now() + 7000);
  utimesSync(path, t, t);
}

beforeAll(async () => {
  root = tmp();
  ({ python, veloHome, index } = await startUvIndexSandbox(root));
  expect(existsSync(LAUNCHER), 'native/build/velo-launch (node native/build.mjs)').toBe(true);
  markFile = join(root, 'node-ran');
  marker = join(root, 'mark.cjs');
  writeFileSync(marker, `require('node:fs').appendFileSync(${JSON.stringify(markFile)}, 'node\\n');\n`);
  // a directory name that is not ASCII, with a space (velo refuses quotes in environment paths)
  project = copyProject('app-one', join(root, 'pro jé cts'));
  mkdirSync(join(project, 'src', 'deep'), { recursive: true });
  const lock = runUvCli(['lock'], env(), project);
  expect(lock.code, lock.stderr).toBe(0);
  expectRealSync(['--locked']);
}, 300_000);

afterAll(async () => {
  if (veloHome) {
    await unmountAll(Store.open(veloHome)).catch(() => undefined);
    killLeftoverServers(veloHome);
  }
  await stopUvIndexSandbox(index, root);
});

describe('velo-launch: the uv no-op without Node', () => {
  test('answers as velo does: plain, --json, options outside the fingerprint, an explicit --projection, from a subdirectory', () => {
    expectLauncherNoop(['--locked']);
    expectLauncherNoop(['--locked', '--json']);
    expectLauncherNoop(['--json', '--frozen', '--offline', '-q', '--no-progress', '--compile-bytecode', '--link-mode=copy', '--projection', 'link']);
    // what does not decide the environment: the ignored UV_* settings
    expectLauncherNoop(['--locked'], { UV_CONCURRENT_DOWNLOADS: '3', UV_OFFLINE: '1' });
    expectLauncherNoop(['--locked'], {}, { cwd: join(project, 'src', 'deep') });
    expectLauncherNoop(['--locked', '--directory', 'src/..']);
    expectLauncherNoop(['--locked', `--project=${project}`], {}, { cwd: root });
    // bin/velo of a clone uses it too
    expectLauncherNoop(['--locked'], {}, { bin: CLONE_BIN });
  });

  test('leaves to Node what it does not answer: --help, --dry-run/--check, --reinstall, refused and broken arguments', () => {
    for (const args of [['--help'], ['--locked', '--check'], ['--active'], ['--locked', '--frozen'], ['--projection', 'sideways'], ['--python']]) {
      const fast = run(args);
      const node = byNode(args);
      expect(fast.node, args.join(' ')).toBe(true);
      expect({ code: fast.code, stdout: fast.stdout }, args.join(' ')).toEqual({ code: node.code, stdout: node.stdout });
    }
    expectRealSync(['--locked', '--reinstall']);
    // not a uv sync at all
    const version = spawnSync(BUNDLE_BIN, ['uv', '--help'], { env: env(), cwd: project, encoding: 'utf8' });
    expect(version.status).toBe(0);
    expect(version.stdout).toMatch(/Usage: velo uv sync/);
  });

  test('every change the no-op check sees takes a real sync, and the next run is the launcher\'s again', () => {
    // uv.lock and pyproject.toml
    touch(join(project, 'uv.lock'));
    expectRealSync(['--locked']);
    expectLauncherNoop(['--locked']);
    touch(join(project, 'pyproject.toml'));
    expectRealSync(['--locked']);
    expectLauncherNoop(['--locked']);
    // the environment: a file added to site-packages, an entry-point script removed
    const site = join(project, '.venv', 'lib', `python3.11`, 'site-packages');
    writeFileSync(join(site, 'stray.py'), '');
    rmSync(join(site, 'stray.py'));
    expectRealSync(['--locked']);
    expectLauncherNoop(['--locked']);
    rmSync(join(project, '.venv', 'bin', 'app-one'));
    expectRealSync(['--locked']);
    expectLauncherNoop(['--locked']);
    // different arguments are a different environment
    expectRealSync(['--locked', '--no-install-project']);
    expectLauncherNoop(['--locked', '--no-install-project']);
    expectRealSync(['--locked']);
    // the spellings of an option with a value, each its own fingerprint (as velo records them)
    for (const spelling of [['-p', python], [`-p${python}`], [`--python=${python}`], ['--python', python]]) {
      expectRealSync(['--locked', ...spelling]);
      expectLauncherNoop(['--locked', ...spelling]);
    }
    expectRealSync(['--locked']);
    // a UV_* setting that matters
    expectRealSync(['--locked'], { UV_INDEX_STRATEGY: 'first-index' });
    expectLauncherNoop(['--locked'], { UV_INDEX_STRATEGY: 'first-index' });
    expectRealSync(['--locked']);
    expectLauncherNoop(['--locked']);
  });

  test('another uv binary, or the same one changed, takes a real sync', () => {
    const own = join(root, 'own-uv');
    mkdirSync(own, { recursive: true });
    copyFileSync(UV, join(own, 'uv'));
    chmodSync(join(own, 'uv'), 0o755);
    expectRealSync(['--locked'], { VELO_UV: join(own, 'uv') });
    expectLauncherNoop(['--locked'], { VELO_UV: join(own, 'uv') });
    touch(join(own, 'uv'));
    expectRealSync(['--locked'], { VELO_UV: join(own, 'uv') });
    expectLauncherNoop(['--locked'], { VELO_UV: join(own, 'uv') });
    expectRealSync(['--locked']);
  });

  test('a state file of another format, or another node on PATH, goes to Node', () => {
    const statePath = join(project, '.venv', '.velo-state');
    const state = readFileSync(statePath, 'utf8');
    expect(JSON.parse(state)).toMatchObject({ v: 3 });
    writeFileSync(statePath, state.replace(/^ "v": 3,/m, ' "v": 2,'));
    expectRealSync(['--locked']);
    expectLauncherNoop(['--locked']);
    // a node that is not the one that wrote the state: a wrapper first on PATH
    const other = join(root, 'other-node');
    mkdirSync(other, { recursive: true });
    writeFileSync(join(other, 'node'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} "$@"\n`);
    chmodSync(join(other, 'node'), 0o755);
    const fast = run(['--locked'], { PATH: `${other}:${env().PATH}` });
    expect(fast.node).toBe(true);
    expect(fast.code, fast.stderr).toBe(0);
    expect(fast.stdout).toMatch(/is up to date/);
  });

  test('installed as npm installs it: the platform package\'s launcher answers; without it Node does', () => {
    // <prefix>/bin/velo -> ../lib/node_modules/velo-rift/dist/bundle/velo, the launcher nested in velo-rift's node_modules
    const prefix = join(root, 'prefix');
    const pkg = join(prefix, 'lib', 'node_modules', 'velo-rift');
    cpSync(join(REPO_ROOT, 'dist', 'bundle'), join(pkg, 'dist', 'bundle'), { recursive: true });
    writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'velo-rift', type: 'module', bin: { velo: 'dist/bundle/velo' } }));
    mkdirSync(join(pkg, 'node_modules'), { recursive: true });
    symlinkSync(join(REPO_ROOT, 'node_modules', '@napi-rs'), join(pkg, 'node_modules', '@napi-rs'));
    const platform = join(pkg, 'node_modules', '@velo-rift', `linux-${process.arch}-gnu`);
    mkdirSync(platform, { recursive: true });
    writeFileSync(join(platform, 'package.json'), JSON.stringify({ name: `@velo-rift/linux-${process.arch}-gnu` }));
    for (const f of ['velo_native.node', 'velo-mountd', 'velo-launch']) copyFileSync(join(REPO_ROOT, 'native', 'build', f), join(platform, f));
    chmodSync(join(platform, 'velo-launch'), 0o755);
    mkdirSync(join(prefix, 'bin'));
    symlinkSync('../lib/node_modules/velo-rift/dist/bundle/velo', join(prefix, 'bin', 'velo'));
    const bin = join(prefix, 'bin', 'velo');

    expectLauncherNoop(['--locked', '--json'], {}, { bin });
    rmSync(join(platform, 'velo-launch'));
    const fast = run(['--locked', '--json'], {}, { bin });
    expect(fast.node).toBe(true);
    expect(fast.code, fast.stderr).toBe(0);
    expect(JSON.parse(fast.stdout)).toMatchObject({ noop: true });
    // a project's own install (npx): node_modules/.bin/velo -> ../velo-rift/dist/bundle/velo, the platform package hoisted beside it
    const modules = join(root, 'local', 'node_modules');
    mkdirSync(join(modules, '.bin'), { recursive: true });
    cpSync(pkg, join(modules, 'velo-rift'), { recursive: true, verbatimSymlinks: true });
    rmSync(join(modules, 'velo-rift', 'node_modules', '@velo-rift'), { recursive: true });
    const hoisted = join(modules, '@velo-rift', `linux-${process.arch}-musl`);
    mkdirSync(hoisted, { recursive: true });
    copyFileSync(join(REPO_ROOT, 'native', 'build', 'velo-launch'), join(hoisted, 'velo-launch'));
    chmodSync(join(hoisted, 'velo-launch'), 0o755);
    symlinkSync('../velo-rift/dist/bundle/velo', join(modules, '.bin', 'velo'));
    expectLauncherNoop(['--locked'], {}, { bin: join(modules, '.bin', 'velo') });
    // and a command that is not uv's runs through the same bin
    const r = spawnSync(bin, ['--version'], { env: env(), encoding: 'utf8' });
    expect(r.stdout.trim()).toBe((JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version);
  });

  test('the configured projection counts: a velo.json that says mount takes a real (mounted) sync, whose no-op the launcher answers', () => {
    const cfg = join(project, 'velo.json');
    writeFileSync(cfg, JSON.stringify({ ecosystems: ['uv'], projection: 'link' }));
    expectLauncherNoop(['--locked']);
    writeFileSync(cfg, '{ "projection": "link", }');
    const broken = run(['--locked']);
    expect(broken.node).toBe(true);
    expect(broken.code).not.toBe(0);
    writeFileSync(cfg, JSON.stringify({ projection: 'mount' }));
    const r = run(['--locked', '--json']);
    expect(r.node).toBe(true);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { noop: boolean; projection: string };
    expect(summary).toMatchObject({ noop: false });
    // a mounted environment is a no-op like a linked one: the launcher stats through the mount
    // (this machine mounts; where FUSE is missing velo links instead and says so)
    if (summary.projection === 'mount') {
      expectLauncherNoop(['--locked']);
      expectLauncherNoop(['--locked', '--json']);
    }
    rmSync(cfg);
  });
});

/** A `static const char *const NAME[] = { "a", "b", NULL };` table of the launcher's C sources. */
function cTable(file: string, name: string): string[] {
  const text = readFileSync(join(REPO_ROOT, 'native', 'src', 'launch', file), 'utf8');
  const m = new RegExp(`static const char \\*const ${name}\\[\\] = \\{([^}]*)\\};`).exec(text);
  expect(m, `${file}: ${name}`).not.toBeNull();
  return [...m![1]!.matchAll(/"([^"]*)"/g)].map((x) => x[1]!).sort();
}

test('the launcher\'s tables are velo\'s: options, refused options, the fingerprint, ignored settings, configuration values', () => {
  const sorted = (xs: Iterable<string>): string[] => [...xs].sort();
  expect(cTable('uv_noop.c', 'VALUE_OPTIONS')).toEqual(sorted(VALUE_OPTIONS));
  expect(cTable('uv_noop.c', 'REFUSED')).toEqual(sorted(Object.keys(REFUSED)));
  expect(cTable('uv_noop.c', 'NOT_IN_FINGERPRINT')).toEqual(sorted(NOT_IN_FINGERPRINT));
  expect(cTable('uv_noop.c', 'FORCE_FULL')).toEqual(sorted(FORCE_FULL));
  expect(cTable('uv_noop.c', 'SETTINGS_IGNORED')).toEqual(sorted(SETTINGS_IGNORED));
  expect(cTable('config.c', 'PROJECTIONS')).toEqual(sorted(PROJECTIONS));
  expect(cTable('config.c', 'METHODS')).toEqual(sorted(LINK_METHODS));
  expect(cTable('config.c', 'ECOSYSTEMS')).toEqual(sorted(ECOSYSTEMS));
  const version = /const STATE_VERSION = (\d+);/.exec(readFileSync(join(REPO_ROOT, 'src', 'uv', 'envState.ts'), 'utf8'))![1];
  expect(readFileSync(join(REPO_ROOT, 'native', 'src', 'launch', 'uv_noop.h'), 'utf8')).toContain(`#define UV_STATE_VERSION "${version}"`);
});
