// The npm test harness is real: a verdaccio on 127.0.0.1 serving the fixture
// packages, the real npm installing every fixture project from it, and the
// request log and failure injection doing what the npm tests rely on.
// What each test asserts is what npm 11 really does; where npm's behaviour is
// surprising the test says so, because velo must do the same.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { buildTarball } from './support/craftedTarballs.js';
import {
  assertNpmOk,
  createNpmSandbox,
  npmVersion,
  prepareProject,
  runNpm,
  type NpmRunResult,
  type PrepareProjectOptions,
  type PreparedProject,
} from './support/npmProject.js';
import { listFixturePackages, startRegistry, type FailureRule, type Registry } from './support/registry.js';
import { describeDir } from './support/treeCompare.js';

let registry: Registry;
const timings: Record<string, number> = {};
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  const t0 = performance.now();
  registry = await startRegistry();
  timings['registry start (process spawn → listening)'] = registry.startMs;
  timings['seed storage build (0 = cached)'] = registry.seedMs;
  timings['startRegistry total'] = performance.now() - t0;
}, 300_000);

afterEach(async () => {
  await registry.setFailure(null);
  for (const c of cleanups.splice(0)) await c();
});

afterAll(async () => {
  await registry?.stop();
  console.log(
    'harness timings (ms):\n' +
      Object.entries(timings)
        .map(([k, v]) => `  ${k}: ${v.toFixed(0)}`)
        .join('\n'),
  );
});

async function project(name: string, opts: PrepareProjectOptions = {}): Promise<PreparedProject> {
  const p = await prepareProject(name, registry, opts);
  cleanups.push(p.cleanup);
  if (p.lockMs > 0) timings[`${name}: npm install --package-lock-only`] = p.lockMs;
  return p;
}

/** Prepare, clear the request log, run `npm ci`, insist it worked. */
async function ci(name: string, args: string[] = [], opts: PrepareProjectOptions = {}): Promise<{ p: PreparedProject; nm: string; res: NpmRunResult }> {
  const p = await project(name, opts);
  await registry.clearRequests();
  const res = await p.npm(['ci', ...args]);
  assertNpmOk(res, `npm ci in ${name}`);
  timings[`${name}: npm ci${args.length ? ' ' + args.join(' ') : ''}`] = res.durationMs;
  return { p, nm: join(p.dir, 'node_modules'), res };
}

const version = (dir: string): string => (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
const tarballNames = async (): Promise<string[]> =>
  (await registry.requestsOfKind('tarball')).map((r) => r.name ?? '?').sort();
type LockEntry = Record<string, unknown>;
const lockPackages = async (p: PreparedProject): Promise<Record<string, LockEntry>> =>
  (await p.lockfile()).packages as Record<string, LockEntry>;

describe('the registry', () => {
  test('listens on loopback, serves every fixture with npm-made tarballs, and knows nothing else', async () => {
    expect(registry.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const fixtures = await listFixturePackages();
    expect(fixtures.length).toBeGreaterThanOrEqual(30);
    await registry.clearRequests();
    const npmV = await npmVersion();
    for (const fx of fixtures) {
      const escaped = fx.name.replace('/', '%2f');
      const doc = (await (await fetch(`${registry.url}${escaped}`)).json()) as {
        versions: Record<string, { _npmVersion?: string; dist: { tarball: string; integrity: string } }>;
      };
      const v = doc.versions[fx.version];
      expect(v, `${fx.name}@${fx.version}`).toBeDefined();
      if (!v) continue;
      // Published by the real npm (npm pack + npm publish), except the crafted ones.
      if (!fx.crafted) expect(v._npmVersion).toBe(npmV);
      expect(v.dist.tarball.startsWith(registry.url)).toBe(true);
      const tgz = Buffer.from(await (await fetch(v.dist.tarball)).arrayBuffer());
      expect(`sha512-${createHash('sha512').update(tgz).digest('base64')}`).toBe(v.dist.integrity);
    }
    const log = await registry.requests();
    expect(log.filter((r) => r.kind === 'packument').map((r) => r.name)).toEqual(fixtures.map((f) => f.name));
    expect(log.filter((r) => r.kind === 'tarball').map((r) => r.name)).toEqual(fixtures.map((f) => f.name));
    expect(log.every((r) => r.status === 200)).toBe(true);

    // No uplinks: a package that exists on npmjs.org is simply not here.
    const missing = await fetch(`${registry.url}left-pad`);
    expect(missing.status).toBe(404);
  });
});

describe('real npm ci into each fixture project', () => {
  test('basic: scoped packages, bins in all three forms, a chain, many files; no packument requests', async () => {
    const { p, nm } = await ci('basic');
    expect(readdirSync(join(nm, '.bin')).sort()).toEqual(['fx-dirbin-one', 'fx-dirbin-two.js', 'fx-tool-a', 'fx-tool-b', 'hello']);
    expect(readlinkSync(join(nm, '.bin', 'hello'))).toBe('../@velo-fx/hello/bin/hello.js');
    expect(readlinkSync(join(nm, '.bin', 'fx-tool-b'))).toBe('../velo-fx-tools/bin/b.sh');
    expect(execFileSync(join(nm, '.bin', 'hello'), ['velo'], { env: p.env }).toString()).toBe('hello velo (via velo-fx-leaf)\n');
    // b.sh is not executable in the fixture source; npm pack and npm's extraction both make bins executable.
    expect(statSync(join(nm, 'velo-fx-tools', 'bin', 'b.sh')).mode & 0o111).toBe(0o111);
    expect(execFileSync(join(nm, '.bin', 'fx-tool-b'), ['x']).toString()).toBe('fx-tool-b x\n');
    const files = [...describeDir(join(nm, 'velo-fx-many-files'))].filter(([, d]) => d.kind === 'file');
    expect(files.length).toBe(158);
    expect(readFileSync(join(nm, 'velo-fx-many-files', 'data', 'café.txt'), 'utf8')).toBe('non-ascii name\n');
    expect(existsSync(join(nm, '.package-lock.json'))).toBe(true);
    // A complete lockfile (resolved + integrity): npm ci fetches tarballs only.
    expect(await tarballNames()).toEqual(
      ['@velo-fx/dirbin', '@velo-fx/hello', 'velo-fx-chain-a', 'velo-fx-chain-b', 'velo-fx-chain-c', 'velo-fx-leaf', 'velo-fx-many-files', 'velo-fx-tools'],
    );
    expect(await registry.requestsOfKind('packument')).toEqual([]);
  });

  test('conflicts: 2.x at the top, 1.x nested under each 1.x consumer with its own .bin', async () => {
    const { nm } = await ci('conflicts');
    expect(version(join(nm, 'velo-fx-shared'))).toBe('2.0.0');
    expect(version(join(nm, '@velo-fx', 'uses-shared-v1', 'node_modules', 'velo-fx-shared'))).toBe('1.0.0');
    expect(version(join(nm, 'velo-fx-uses-shared-v1', 'node_modules', 'velo-fx-shared'))).toBe('1.0.0');
    expect(existsSync(join(nm, 'velo-fx-uses-shared-v2', 'node_modules'))).toBe(false);
    expect(readlinkSync(join(nm, '@velo-fx', 'uses-shared-v1', 'node_modules', '.bin', 'fx-shared'))).toBe('../velo-fx-shared/bin/fx-shared.js');
    expect(execFileSync(join(nm, '.bin', 'fx-shared')).toString()).toBe('velo-fx-shared 2.0.0\n');
    // The 1.0.0 tarball is fetched once per nested copy.
    expect(await tarballNames()).toEqual([
      '@velo-fx/uses-shared-v1',
      'velo-fx-shared',
      'velo-fx-shared',
      'velo-fx-shared',
      'velo-fx-uses-shared-v1',
      'velo-fx-uses-shared-v2',
    ]);
  });

  test('optional: only the os/cpu/libc match is installed (and fetched); the lockfile lists all three', async () => {
    const { p, nm } = await ci('optional');
    expect(readdirSync(join(nm, '@velo-fx'))).toEqual(['native-linux-x64']);
    const lock = await lockPackages(p);
    expect(lock['node_modules/@velo-fx/native-darwin-arm64']).toMatchObject({ optional: true, os: ['darwin'], cpu: ['arm64'] });
    expect(lock['node_modules/@velo-fx/native-linux-x64-musl']).toMatchObject({ optional: true, libc: ['musl'] });
    expect(await tarballNames()).toEqual(['@velo-fx/native-linux-x64', 'velo-fx-native']);
    const found = execFileSync(process.execPath, ['-p', "JSON.stringify(require('velo-fx-native').found)"], { cwd: p.dir }).toString();
    expect(JSON.parse(found)).toEqual(['linux-x64-glibc']);
  });

  test('peers: the required peer is installed and marked peer; the optional peer is not', async () => {
    const { p, nm } = await ci('peers');
    expect(readdirSync(nm).filter((n) => !n.startsWith('.')).sort()).toEqual(['velo-fx-host', 'velo-fx-plugin']);
    const lock = await lockPackages(p);
    expect(lock['node_modules/velo-fx-host']).toMatchObject({ peer: true });
    expect(lock['node_modules/velo-fx-optional-peer']).toBeUndefined();
  });

  test('workspace: workspaces linked, a workspace-local node_modules for the conflicting version', async () => {
    const { p, nm } = await ci('workspace');
    expect(readlinkSync(join(nm, '@velo-fx-ws', 'a'))).toBe('../../packages/a');
    expect(readlinkSync(join(nm, 'velo-fx-ws-b'))).toBe('../packages/b');
    expect(readlinkSync(join(nm, '.bin', 'fx-ws-a'))).toBe('../@velo-fx-ws/a/bin/fx-ws-a.js');
    expect(version(join(nm, 'velo-fx-shared'))).toBe('2.0.0');
    expect(version(join(p.dir, 'packages', 'b', 'node_modules', 'velo-fx-shared'))).toBe('1.0.0');
  });

  test('scripts: dependency and root lifecycle scripts run (with an allowScripts warning), in order, with npm’s env', async () => {
    const { p, nm, res } = await ci('scripts');
    const pkg = join(nm, 'velo-fx-scripted');
    expect(readFileSync(join(pkg, 'order.txt'), 'utf8')).toBe('preinstall\ninstall\npostinstall\n');
    expect(readFileSync(join(pkg, 'built.txt'), 'utf8')).toBe('built by postinstall\n');
    expect(readFileSync(join(nm, 'velo-fx-scripted-dep', 'postinstall-ran.txt'), 'utf8')).toBe('postinstall velo-fx-scripted-dep\n');
    const lock = await lockPackages(p);
    const report = JSON.parse(readFileSync(join(pkg, 'lifecycle-postinstall.json'), 'utf8')) as Record<string, unknown>;
    expect(report).toEqual({
      event: 'postinstall',
      env: {
        npm_command: 'ci',
        npm_lifecycle_event: 'postinstall',
        npm_lifecycle_script: 'node lifecycle.js',
        npm_package_name: 'velo-fx-scripted',
        npm_package_version: '1.0.0',
        npm_package_json: '<INIT_CWD>/node_modules/velo-fx-scripted/package.json',
        npm_package_resolved: `${registry.url}velo-fx-scripted/-/velo-fx-scripted-1.0.0.tgz`,
        npm_package_integrity: lock['node_modules/velo-fx-scripted']?.integrity,
        npm_package_optional: '',
        npm_package_dev: '',
        npm_package_peer: '',
        npm_package_dev_optional: '',
      },
      cwd: '<INIT_CWD>/node_modules/velo-fx-scripted',
      initCwdHasPackageJson: true,
      dependencyVersion: '1.0.0',
      // npm adds node_modules/.bin of every ancestor, including the odd <root>/node_modules/node_modules/.bin.
      pathEntriesInsideProject: [
        '<INIT_CWD>/node_modules/velo-fx-scripted/node_modules/.bin',
        '<INIT_CWD>/node_modules/node_modules/.bin',
        '<INIT_CWD>/node_modules/.bin',
      ],
      helloBin: '<INIT_CWD>/node_modules/.bin/hello',
      nodeGypOnPath: true,
    });
    expect(readFileSync(join(p.dir, 'root-lifecycle.txt'), 'utf8')).toBe(
      ['preinstall', 'install', 'postinstall', 'prepare'].map((e) => `${e} ci dependency-built=true\n`).join(''),
    );
    // npm 11.19 default policy: unreviewed scripts run, with a warning.
    expect(res.stderr).toContain('2 packages have install scripts not yet covered by allowScripts');

    // --strict-allow-scripts (here from .npmrc) refuses before touching node_modules.
    await appendFile(join(p.dir, '.npmrc'), 'strict-allow-scripts=true\n');
    const strict = await p.npm(['ci']);
    expect(strict.code).not.toBe(0);
    expect(strict.stderr).toContain('ESTRICTALLOWSCRIPTS');
    expect(existsSync(join(pkg, 'built.txt'))).toBe(true);
  });

  test('scripts: package.json allowScripts false skips that package’s scripts only', async () => {
    const p = await project('scripts');
    const pj = JSON.parse(await readFile(join(p.dir, 'package.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(join(p.dir, 'package.json'), JSON.stringify({ ...pj, allowScripts: { 'velo-fx-scripted': false } }, null, 2));
    const res = await p.npm(['ci']);
    assertNpmOk(res);
    const nm = join(p.dir, 'node_modules');
    expect(existsSync(join(nm, 'velo-fx-scripted', 'order.txt'))).toBe(false);
    expect(existsSync(join(nm, 'velo-fx-scripted-dep', 'postinstall-ran.txt'))).toBe(true);
    expect(existsSync(join(p.dir, 'root-lifecycle.txt'))).toBe(true);
    expect(res.stderr).toContain('1 package has install scripts not yet covered by allowScripts');
  });

  test('scripts-optional-fail: a failing optional dependency script is not fatal; npm removes the package', async () => {
    const { nm } = await ci('scripts-optional-fail');
    expect(existsSync(join(nm, 'velo-fx-leaf'))).toBe(true);
    expect(existsSync(join(nm, 'velo-fx-script-fails'))).toBe(false);
  });

  test('gyp: node-gyp rebuild runs offline against local headers, and also for gypfile: false under npm ci', async () => {
    const { p, nm, res } = await ci('gyp');
    expect(execFileSync(process.execPath, ['-p', "require('velo-fx-gyp').answer()"], { cwd: p.dir }).toString()).toBe('velo-fx-gyp native addon\n');
    // The lockfile does not record gypfile, so npm ci sees only binding.gyp on disk and builds it anyway.
    expect(existsSync(join(nm, 'velo-fx-gyp-off', 'build', 'Release', 'velo_fx_gyp_off.node'))).toBe(true);
    const lock = await lockPackages(p);
    expect(lock['node_modules/velo-fx-gyp']).toMatchObject({ hasInstallScript: true });
    expect(lock['node_modules/velo-fx-gyp-off']?.hasInstallScript).toBeUndefined();
    expect(res.stderr).toContain('velo-fx-gyp-off@1.0.0 (install: node-gyp rebuild)');
    // The build used the sandbox's header directory, and build/ records absolute paths of this project.
    const configGypi = readFileSync(join(nm, 'velo-fx-gyp', 'build', 'config.gypi'), 'utf8');
    expect(configGypi).toContain(join(p.sandbox.xdgCacheHome, 'node-gyp', process.versions.node));
    expect(readFileSync(join(nm, 'velo-fx-gyp', 'build', 'Makefile'), 'utf8')).toContain(p.dir);
  });

  test('dev: --omit=dev and --omit=optional', async () => {
    const { p, nm } = await ci('dev', ['--omit=dev']);
    expect(readdirSync(nm).filter((n) => !n.startsWith('.')).sort()).toEqual([
      '@velo-fx',
      'velo-fx-chain-a',
      'velo-fx-chain-b',
      'velo-fx-chain-c',
      'velo-fx-leaf',
    ]);
    expect(existsSync(join(nm, '.bin'))).toBe(false);
    assertNpmOk(await p.npm(['ci', '--omit=optional']));
    expect(existsSync(join(nm, '@velo-fx', 'opt-plain'))).toBe(false);
    expect(existsSync(join(nm, 'velo-fx-devtool', 'bin', 'fx-devtool.js'))).toBe(true);
    expect(readlinkSync(join(nm, '.bin', 'fx-devtool'))).toBe('../velo-fx-devtool/bin/fx-devtool.js');
    const lock = await lockPackages(p);
    expect(lock['node_modules/velo-fx-host']).toMatchObject({ dev: true });
    expect(lock['node_modules/velo-fx-chain-c']?.dev).toBeUndefined();
  });

  test('odd-tarballs: how npm normalizes a tarball npm pack would never make', async () => {
    const { nm } = await ci('odd-tarballs');
    const pkg = join(nm, 'velo-fx-odd-modes');
    const mode = (rel: string): string => (statSync(join(pkg, rel)).mode & 0o777).toString(8);
    expect(mode('bin/cli.js')).toBe('755'); // bin: made executable
    expect(mode('scripts/run.sh')).toBe('755'); // exec bit from the tarball kept
    expect(mode('private.txt')).toBe('644'); // 0600 widened to 0644
    expect(mode('private-dir')).toBe('755'); // 0700 widened to 0755
    // Only the shebang line loses its CR.
    expect(readFileSync(join(pkg, 'bin', 'cli.js'), 'utf8')).toBe("#!/usr/bin/env node\n'use strict';\r\nprocess.stdout.write('fx-odd\\n');\r\n");
    expect(readFileSync(join(pkg, 'twice.txt'), 'utf8')).toBe('second copy wins\n');
    // .gitignore is renamed .npmignore; symlinks are dropped; top dir name does not matter.
    expect(readdirSync(pkg).sort()).toEqual(['.npmignore', 'bin', 'index.js', 'package.json', 'private-dir', 'private.txt', 'scripts', 'twice.txt']);
  });

  test('evil: npm sanitizes hostile tarballs silently (.. skipped, / stripped, links dropped)', async () => {
    const { p, nm, res } = await ci('evil');
    expect(res.stderr).toContain("TAR_ENTRY_ERROR path contains '..'");
    expect(existsSync(join(p.dir, 'velo-fx-evil-dotdot.txt'))).toBe(false);
    expect(existsSync(join(nm, 'velo-fx-evil-dotdot.txt'))).toBe(false);
    expect(existsSync(join(nm, 'velo-fx-evil-dotdot-2.txt'))).toBe(false);
    expect(readdirSync(join(nm, 'velo-fx-evil-dotdot')).sort()).toEqual(['index.js', 'package.json']);
    expect(readFileSync(join(nm, 'velo-fx-evil-absolute', 'tmp', 'velo-fx-evil-absolute.txt'), 'utf8')).toBe('absolute path entry\n');
    expect(lstatSync(join(nm, 'velo-fx-evil-symlink', 'escape')).isDirectory()).toBe(true);
    expect(existsSync(join(nm, 'velo-fx-evil-symlink', 'abs-link'))).toBe(false);
    expect(readdirSync(join(nm, 'velo-fx-evil-hardlink')).sort()).toEqual(['index.js', 'package.json']);
    // Nothing landed where the hostile entries pointed.
    expect(existsSync('/tmp/velo-fx-evil-absolute.txt')).toBe(false);
    expect(existsSync('/tmp/velo-fx-evil-through-symlink.txt')).toBe(false);
  });
});

describe('npm cache and the request log', () => {
  test('a second npm ci with a warm cache makes no request at all', async () => {
    const { p, nm } = await ci('basic');
    expect((await registry.requests()).length).toBe(8);
    await rm(nm, { recursive: true });
    await registry.clearRequests();
    const again = await p.npm(['ci']);
    assertNpmOk(again);
    timings['basic: npm ci, warm npm cache'] = again.durationMs;
    expect(await registry.requests()).toEqual([]);
  });

  test('lockfile without resolved (omit-lockfile-registry-resolved): packuments first, and a warm cache still re-downloads tarballs', async () => {
    const { p, nm } = await ci('basic', [], { npmrc: { 'omit-lockfile-registry-resolved': true } });
    const lock = await lockPackages(p);
    expect(lock['node_modules/velo-fx-leaf']?.resolved).toBeUndefined();
    expect(lock['node_modules/velo-fx-leaf']?.integrity).toMatch(/^sha512-/);
    const first = await registry.requests();
    expect(first.filter((r) => r.kind === 'packument').length).toBe(8);
    expect(first.filter((r) => r.kind === 'tarball').length).toBe(8);
    await rm(nm, { recursive: true });
    await registry.clearRequests();
    assertNpmOk(await p.npm(['ci']));
    const second = await registry.requests();
    expect(second.filter((r) => r.kind === 'packument').map((r) => r.status)).toEqual(Array(8).fill(304));
    expect(second.filter((r) => r.kind === 'tarball').map((r) => r.status)).toEqual(Array(8).fill(200));
  });
});

describe('failure injection makes real npm fail the way a broken registry would', () => {
  const cases: { label: string; rule: FailureRule; userconfig?: Record<string, number>; code: string; attempts: number }[] = [
    { label: '500', rule: { mode: 'status', status: 500 }, code: 'E500', attempts: 2 }, // fetch-retries=1: one retry
    { label: '404', rule: { mode: 'status', status: 404 }, code: 'E404', attempts: 1 }, // 404 is not retried
    { label: 'tampered bytes', rule: { mode: 'tamper' }, code: 'EINTEGRITY', attempts: 4 }, // pacote re-fetches "corrupted" tarballs
    { label: 'connection reset', rule: { mode: 'reset' }, code: 'ECONNRESET', attempts: 2 },
    { label: 'no answer', rule: { mode: 'hang' }, userconfig: { 'fetch-timeout': 1500, 'fetch-retries': 0 }, code: 'network timeout', attempts: 1 },
  ];
  test.each(cases)('tarball GET answered with $label → npm ci fails with $code', async ({ rule, userconfig, code, attempts }) => {
    const p = await project('peers', userconfig ? { userconfig } : {});
    await registry.clearRequests();
    await registry.setFailure({ ...rule, name: 'velo-fx-host' });
    const res = await p.npm(['ci']);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(code);
    const host = (await registry.requestsOfKind('tarball')).filter((r) => r.name === 'velo-fx-host');
    expect(host.length).toBe(attempts);
    expect(host.every((r) => r.failure === rule.mode)).toBe(true);
    expect(existsSync(join(p.dir, 'node_modules', 'velo-fx-host'))).toBe(false);
  });

  test('packument failure with times: 1 fails once, then npm’s retry succeeds', async () => {
    const p = await project('peers', { lockfile: false });
    await registry.clearRequests();
    await registry.setFailure({ mode: 'status', status: 500, on: 'packument', name: 'velo-fx-plugin', times: 1 });
    assertNpmOk(await p.npm(['install', '--package-lock-only']));
    const plugin = (await registry.requestsOfKind('packument')).filter((r) => r.name === 'velo-fx-plugin');
    expect(plugin.map((r) => r.status)).toEqual([500, 200]);
  });
});

describe('publishing at test time', () => {
  test('publishTarball serves a node-tar tarball npm installs; real npm publish works too', async () => {
    const tgz = buildTarball([
      { path: 'package/package.json', content: JSON.stringify({ name: 'velo-fx-runtime', version: '1.0.0' }) },
      { path: 'package/hello.txt', content: 'published at test time\n' },
    ]);
    const published = await registry.publishTarball({ name: 'velo-fx-runtime', version: '1.0.0' }, tgz);
    expect(published.tarball).toBe(`${registry.url}velo-fx-runtime/-/velo-fx-runtime-1.0.0.tgz`);

    const root = await mkdtemp(join(tmpdir(), 'velo-publish-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const sandbox = await createNpmSandbox(registry, { root });
    const src = join(root, 'src');
    await mkdir(src);
    await writeFile(join(src, 'package.json'), JSON.stringify({ name: '@velo-fx/runtime-npm', version: '1.0.0' }));
    await writeFile(join(src, 'index.js'), 'module.exports = 1;\n');
    const pub = await runNpm(['publish'], { cwd: src, env: sandbox.env });
    assertNpmOk(pub, 'npm publish');
    timings['one real npm publish'] = pub.durationMs;

    const p = await prepareProject(
      { name: 'runtime', packageJson: { name: 'runtime', version: '1.0.0', dependencies: { 'velo-fx-runtime': '1.0.0', '@velo-fx/runtime-npm': '1.0.0' } } },
      registry,
    );
    cleanups.push(p.cleanup);
    expect((await lockPackages(p))['node_modules/velo-fx-runtime']?.integrity).toBe(published.integrity);
    assertNpmOk(await p.npm(['ci']));
    expect(readFileSync(join(p.dir, 'node_modules', 'velo-fx-runtime', 'hello.txt'), 'utf8')).toBe('published at test time\n');
    expect(existsSync(join(p.dir, 'node_modules', '@velo-fx', 'runtime-npm', 'index.js'))).toBe(true);
  });
});
