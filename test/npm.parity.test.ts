// velo npm ci must lay out exactly the node_modules that the real npm ci lays
// out, from the same lockfile served by a real registry on loopback: same
// paths, bytes, exec bits and symlinks, file by file. Each project runs both
// installs in the same directory (npm first, then velo), so absolute paths a
// build writes are the same too.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assertNpmOk, type PreparedProject } from './support/npmProject.js';
import { useRegistryProjects } from './support/registryProjects.js';
import { asObject, describeDir } from './support/treeCompare.js';
import { velo, veloAsync, veloEnv as userEnv } from './support/runVelo.js';
import { repoRoot, veloBin } from './support/paths.js';

const fx = useRegistryProjects('velo-npm-store-');
const tmp = fx.tmp;

function project(name: string, npmrc?: Record<string, string | number | boolean>): Promise<PreparedProject> {
  return fx.project(name, npmrc ? { npmrc } : {});
}

function veloEnv(p: PreparedProject, storeHome = fx.home): NodeJS.ProcessEnv {
  return { ...p.env, VELO_HOME: storeHome };
}

/** node_modules as a user would compare it; npm's own bookkeeping file is compared separately */
function snapshot(dir: string): Record<string, unknown> {
  const snap = asObject(describeDir(join(dir, 'node_modules'), { skip: (rel) => rel === '.package-lock.json' }));
  // One known, documented difference (README, "velo npm"): npm links a package's
  // bins after every preinstall script has run, velo lays them out with the
  // tree, so a preinstall script can already see other packages' bins. The
  // fixture records what it saw; that one field is set aside, all else compared.
  const pre = join(dir, 'node_modules/velo-fx-scripted/lifecycle-preinstall.json');
  if (snap['velo-fx-scripted/lifecycle-preinstall.json']) {
    const seen = JSON.parse(readFileSync(pre, 'utf8')) as { helloBin?: unknown };
    delete seen.helloBin;
    snap['velo-fx-scripted/lifecycle-preinstall.json'] = seen;
  }
  return snap;
}

const PROJECTS = ['basic', 'conflicts', 'optional', 'peers', 'workspace', 'dev', 'scripts', 'gyp', 'odd-tarballs'];

describe('velo npm ci lays out what npm ci lays out', () => {
  for (const name of PROJECTS) {
    it(name, async () => {
      const p = await project(name);
      const args = name === 'dev' ? ['ci', '--omit=dev'] : ['ci'];
      assertNpmOk(await p.npm(args), `npm ${args.join(' ')}`);
      const expected = snapshot(p.dir);
      const npmHidden = JSON.parse(readFileSync(join(p.dir, 'node_modules/.package-lock.json'), 'utf8')) as { packages: Record<string, unknown> };
      rmSync(join(p.dir, 'node_modules'), { recursive: true, force: true });
      const r = await veloAsync(['npm', ...args], veloEnv(p), p.dir);
      expect(r.code, r.stderr).toBe(0);
      expect(snapshot(p.dir)).toEqual(expected);
      const veloHidden = JSON.parse(readFileSync(join(p.dir, 'node_modules/.package-lock.json'), 'utf8')) as { packages: Record<string, unknown> };
      expect(Object.keys(veloHidden.packages).sort()).toEqual(Object.keys(npmHidden.packages).sort());
      // npm itself sees the tree as current
      const ls = await p.npm(['ls', '--all', ...(name === 'dev' ? ['--omit=dev'] : [])]);
      expect(ls.code, ls.stdout + ls.stderr).toBe(0);
      const dry = await p.npm(['install', '--dry-run', ...(name === 'dev' ? ['--omit=dev'] : [])]);
      expect(dry.stdout + dry.stderr).toMatch(/up to date/);
    });
  }
});

describe('lockfile variants', () => {
  for (const [label, npmrc] of [
    ['a lockfile without resolved fields (omit-lockfile-registry-resolved)', { 'omit-lockfile-registry-resolved': true }],
    ['a v2 lockfile', { 'lockfile-version': 2 }],
  ] as const) {
    it(label, async () => {
      const p = await project('conflicts', npmrc);
      const lock = JSON.parse(readFileSync(join(p.dir, 'package-lock.json'), 'utf8')) as { lockfileVersion: number; packages: Record<string, { resolved?: string }> };
      if ('lockfile-version' in npmrc) expect(lock.lockfileVersion).toBe(2);
      else expect(Object.values(lock.packages).some((e) => e.resolved)).toBe(false);
      assertNpmOk(await p.npm(['ci']), 'npm ci');
      const expected = snapshot(p.dir);
      rmSync(join(p.dir, 'node_modules'), { recursive: true, force: true });
      const r = await veloAsync(['npm', 'ci'], veloEnv(p, tmp()), p.dir);
      expect(r.code, r.stderr).toBe(0);
      expect(snapshot(p.dir)).toEqual(expected);
    });
  }

  it('--omit=optional and --include=optional', async () => {
    const p = await project('optional');
    assertNpmOk(await p.npm(['ci', '--omit=optional']), 'npm ci --omit=optional');
    const expected = snapshot(p.dir);
    rmSync(join(p.dir, 'node_modules'), { recursive: true, force: true });
    const storeHome = tmp();
    const r = await veloAsync(['npm', 'ci', '--omit=optional'], veloEnv(p, storeHome), p.dir);
    expect(r.code, r.stderr).toBe(0);
    expect(snapshot(p.dir)).toEqual(expected);
    const withOptional = await veloAsync(['npm', 'ci', '--omit=optional', '--include=optional', '--json'], veloEnv(p, storeHome), p.dir);
    expect(withOptional.code, withOptional.stderr).toBe(0);
    expect(JSON.parse(withOptional.stdout)).toMatchObject({ noop: false });
    expect(Object.keys(snapshot(p.dir)).length).toBeGreaterThan(Object.keys(expected).length);
  });

  it('NODE_ENV=production omits dev dependencies as npm does, and is an input: the same store lays out each tree for its own NODE_ENV', async () => {
    const p = await project('dev');
    assertNpmOk(await p.npm(['ci'], { env: { ...p.env, NODE_ENV: 'production' } }), 'NODE_ENV=production npm ci');
    const production = snapshot(p.dir);
    expect(Object.keys(production).some((k) => k.startsWith('velo-fx-devtool'))).toBe(false);
    assertNpmOk(await p.npm(['ci']), 'npm ci');
    const full = snapshot(p.dir);
    expect(Object.keys(full).some((k) => k.startsWith('velo-fx-devtool'))).toBe(true);
    const storeHome = tmp();
    for (const [nodeEnv, expected] of [['production', production], [undefined, full], ['production', production]] as const) {
      rmSync(join(p.dir, 'node_modules'), { recursive: true, force: true });
      const env = { ...veloEnv(p, storeHome), ...(nodeEnv ? { NODE_ENV: nodeEnv } : {}) };
      const r = await veloAsync(['npm', 'ci'], env, p.dir);
      expect(r.code, r.stderr).toBe(0);
      expect(snapshot(p.dir), `NODE_ENV=${nodeEnv ?? ''}`).toEqual(expected);
    }
    // and the no-op check sees it change too
    const again = await veloAsync(['npm', 'ci', '--json'], veloEnv(p, storeHome), p.dir);
    expect(JSON.parse(again.stdout)).toMatchObject({ noop: false });
    expect(snapshot(p.dir)).toEqual(full);
  });
});

describe('install scripts', () => {
  it("the user's allowScripts policy: a denied package's scripts do not run, as with npm", async () => {
    const fixture = join(repoRoot(), 'fixtures/npm-projects/scripts');
    const pkg = JSON.parse(readFileSync(join(fixture, 'package.json'), 'utf8')) as Record<string, unknown>;
    const p = await fx.project({
      name: 'scripts-denied',
      packageJson: { ...pkg, allowScripts: { 'velo-fx-scripted': false } },
      files: { 'root-lifecycle.js': readFileSync(join(fixture, 'root-lifecycle.js'), 'utf8') },
    });
    assertNpmOk(await p.npm(['ci']), 'npm ci');
    const expected = snapshot(p.dir);
    expect(expected['velo-fx-scripted/built.txt']).toBeUndefined();
    const npmRoot = readFileSync(join(p.dir, 'root-lifecycle.txt'), 'utf8');
    rmSync(join(p.dir, 'node_modules'), { recursive: true, force: true });
    rmSync(join(p.dir, 'root-lifecycle.txt'));
    const r = await veloAsync(['npm', 'ci', '--json'], veloEnv(p, tmp()), p.dir);
    expect(r.code, r.stderr).toBe(0);
    expect(snapshot(p.dir)).toEqual(expected);
    // the root project's own scripts are never subject to the policy, and ran in npm's order
    expect(readFileSync(join(p.dir, 'root-lifecycle.txt'), 'utf8')).toBe(npmRoot);
  });

  it('--ignore-scripts runs nothing, not even the root project\'s scripts', async () => {
    const p = await project('scripts');
    const r = await veloAsync(['npm', 'ci', '--ignore-scripts', '--json'], veloEnv(p, tmp()), p.dir);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ built: 0, rootScripts: [] });
    expect(existsSync(join(p.dir, 'node_modules/velo-fx-scripted/built.txt'))).toBe(false);
    expect(existsSync(join(p.dir, 'root-lifecycle.txt'))).toBe(false);
  });
});

describe('--projection mount', () => {
  it('node_modules as a FUSE view with a writable overlay, equal to the link farm; and back to links', async () => {
    const p = await project('basic');
    const storeHome = tmp();
    const linked = await veloAsync(['npm', 'ci'], veloEnv(p, storeHome), p.dir);
    expect(linked.code, linked.stderr).toBe(0);
    const expected = snapshot(p.dir);
    try {
      const r = await veloAsync(['npm', 'ci', '--projection', 'mount', '--json'], veloEnv(p, storeHome), p.dir);
      expect(r.code, r.stderr).toBe(0);
      const summary = JSON.parse(r.stdout) as { projection: string; projectionNote?: string };
      expect(summary.projection).toBe('mount');
      expect(summary.projectionNote).toBeUndefined();
      const mounts = readFileSync('/proc/self/mounts', 'utf8');
      expect(mounts).toContain(` ${join(p.dir, 'node_modules')} overlay `);
      expect(snapshot(p.dir)).toEqual(expected);
      const ls = await p.npm(['ls', '--all']);
      expect(ls.code, ls.stdout + ls.stderr).toBe(0);
      // writes land in the overlay, the store stays as it was
      writeFileSync(join(p.dir, 'node_modules/velo-fx-leaf/index.js'), 'module.exports = "edited";\n');
      expect(velo(['verify'], { VELO_HOME: storeHome }).code).toBe(0);
      const noop = await veloAsync(['npm', 'ci', '--projection', 'mount', '--json'], veloEnv(p, storeHome), p.dir);
      expect(JSON.parse(noop.stdout)).toMatchObject({ noop: true });
      const back = await veloAsync(['npm', 'ci', '--projection', 'link', '--json'], veloEnv(p, storeHome), p.dir);
      expect(back.code, back.stderr).toBe(0);
      expect(JSON.parse(back.stdout)).toMatchObject({ projection: 'link' });
      expect(readFileSync('/proc/self/mounts', 'utf8')).not.toContain(` ${join(p.dir, 'node_modules')} `);
      expect(snapshot(p.dir)).toEqual(expected);
    } finally {
      velo(['umount', '--all'], { VELO_HOME: storeHome });
    }
  });
});

describe('the store', () => {
  it('a second project from a warm store makes no registry request, and the no-op costs nothing', async () => {
    const storeHome = tmp();
    const first = await project('basic');
    const r1 = await veloAsync(['npm', 'ci', '--json'], veloEnv(first, storeHome), first.dir);
    expect(r1.code, r1.stderr).toBe(0);
    expect((JSON.parse(r1.stdout) as { fetched: number }).fetched).toBeGreaterThan(0);
    const second = await project('basic');
    await fx.registry.clearRequests();
    const r2 = await veloAsync(['npm', 'ci', '--json'], veloEnv(second, storeHome), second.dir);
    expect(r2.code, r2.stderr).toBe(0);
    const s2 = JSON.parse(r2.stdout) as { fetched: number; fromStore: number; packages: number; method: string };
    expect(s2.fetched).toBe(0);
    expect(s2.fromStore).toBe(s2.packages);
    expect(await fx.registry.requests()).toEqual([]);
    expect(snapshot(second.dir)).toEqual(snapshot(first.dir));
    const r3 = await veloAsync(['npm', 'ci', '--json'], veloEnv(second, storeHome), second.dir);
    expect(JSON.parse(r3.stdout)).toMatchObject({ noop: true });
    // touching the lockfile's content is not a no-op any more
    await fx.registry.clearRequests();
    const offline = await veloAsync(['npm', 'ci', '--offline', '--json'], veloEnv(second, storeHome), second.dir);
    expect(offline.code, offline.stderr).toBe(0);
    expect(JSON.parse(offline.stdout)).toMatchObject({ noop: false, fetched: 0 });
    expect(await fx.registry.requests()).toEqual([]);
  });

  it('the bin answers the no-op itself exactly as the full command does (output, --json, exit code); a changed project still installs', async () => {
    const storeHome = tmp();
    const p = await project('basic');
    expect((await veloAsync(['npm', 'ci'], veloEnv(p, storeHome), p.dir)).code).toBe(0);
    // the bundle's velo.js run directly is the full command: it never takes start.cjs's fast path
    const full = (args: string[]) => spawnSync(process.execPath, [join(dirname(veloBin()), 'velo.js'), ...args], { env: userEnv(veloEnv(p, storeHome)), cwd: p.dir, encoding: 'utf8' });
    for (const args of [['npm', 'ci'], ['npm', 'ci', '--json'], ['npm', 'install', '--json'], ['npm', 'ci', '--method', 'bogus']]) {
      const viaBin = await veloAsync(args, veloEnv(p, storeHome), p.dir);
      const viaFull = full(args);
      expect({ code: viaBin.code, stdout: viaBin.stdout, stderr: viaBin.stderr }, args.join(' ')).toEqual({ code: viaFull.status, stdout: viaFull.stdout, stderr: viaFull.stderr });
    }
    expect((await veloAsync(['npm', 'ci'], veloEnv(p, storeHome), p.dir)).stdout).toBe('velo: up to date (node_modules unchanged)\n');
    // a changed lockfile is no no-op for either
    const lock = join(p.dir, 'package-lock.json');
    writeFileSync(lock, readFileSync(lock, 'utf8').replace(/\n$/, '\n\n'));
    const changed = await veloAsync(['npm', 'ci', '--json'], veloEnv(p, storeHome), p.dir);
    expect(changed.code, changed.stderr).toBe(0);
    expect(JSON.parse(changed.stdout)).toMatchObject({ noop: false });
  });

  it('install scripts run once; the built package comes from the store next time', async () => {
    const storeHome = tmp();
    const a = await project('scripts');
    const r1 = await veloAsync(['npm', 'ci', '--json'], veloEnv(a, storeHome), a.dir);
    expect(r1.code, r1.stderr).toBe(0);
    // velo-fx-scripted (pre/install/postinstall) and velo-fx-scripted-dep (postinstall)
    expect(JSON.parse(r1.stdout)).toMatchObject({ built: 2 });
    const b = await project('scripts');
    const r2 = await veloAsync(['npm', 'ci', '--json'], veloEnv(b, storeHome), b.dir);
    expect(r2.code, r2.stderr).toBe(0);
    expect(JSON.parse(r2.stdout)).toMatchObject({ built: 0, builtFromStore: 2 });
    expect(existsSync(join(b.dir, 'node_modules/velo-fx-scripted/built.txt'))).toBe(true);
  });
});
