// How velo npm ci fetches: straight from the lockfile, one GET per distinct
// tarball and no packument, retries like npm's fetch, and nothing recorded
// for bytes that did not arrive whole and matching. Real registry on
// loopback (its proxy counts requests and injects failures), real npm.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { listKeys } from '../src/store/keys.js';
import { Store } from '../src/store/store.js';
import type { PreparedProject } from './support/npmProject.js';
import { useRegistryProjects } from './support/registryProjects.js';
import type { RegistryRequest } from './support/registry.js';
import { asObject, describeDir } from './support/treeCompare.js';
import { velo, veloAsync, veloEnv } from './support/runVelo.js';

const fx = useRegistryProjects('velo-npm-fetch-');
afterEach(async () => {
  await fx.registry.setFailure(null);
});

type Lock = { packages: Record<string, { name?: string; version?: string; resolved?: string; integrity?: string }> };

/** basic's dependencies plus one tarball listed at two places (two aliases of velo-fx-shared@1.0.0). */
const ALIASED = {
  name: 'aliased',
  packageJson: {
    name: 'velo-fx-project-aliased',
    version: '1.0.0',
    private: true,
    dependencies: {
      '@velo-fx/hello': '^1.0.0',
      'velo-fx-chain-a': '^1.0.0',
      'velo-fx-tools': '^1.0.0',
      'shared-one': 'npm:velo-fx-shared@1.0.0',
      'shared-uno': 'npm:velo-fx-shared@1.0.0',
    },
  },
};

const withoutResolved = { 'omit-lockfile-registry-resolved': true };
const env = (p: PreparedProject, home: string): NodeJS.ProcessEnv => ({ ...p.env, VELO_HOME: home });
const nm = (p: PreparedProject): Record<string, unknown> => asObject(describeDir(join(p.dir, 'node_modules')));
const lockOf = (p: PreparedProject): Lock => JSON.parse(readFileSync(join(p.dir, 'package-lock.json'), 'utf8')) as Lock;
const tarballsOf = (reqs: RegistryRequest[], name?: string): RegistryRequest[] => reqs.filter((r) => r.kind === 'tarball' && (name === undefined || r.name === name));

function keysIn(home: string): string[] {
  const store = Store.open(home);
  try {
    return listKeys(store).map((k) => k.name);
  } finally {
    store.close();
  }
}

/** A dependency the store does not have yet, added to package.json and the lockfile (by npm). */
function addDependency(p: PreparedProject, name: string): void {
  const pkg = JSON.parse(readFileSync(join(p.dir, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  pkg.dependencies[name] = '^1.0.0';
  writeFileSync(join(p.dir, 'package.json'), JSON.stringify(pkg, null, 2));
  execFileSync('npm', ['install', '--package-lock-only', '--ignore-scripts'], { cwd: p.dir, env: veloEnv(p.env), stdio: 'ignore' });
}

function npmrcAdd(p: PreparedProject, lines: Record<string, string | number>): void {
  const path = join(p.dir, '.npmrc');
  writeFileSync(path, readFileSync(path, 'utf8') + Object.entries(lines).map(([k, v]) => `${k}=${v}\n`).join(''));
}

describe('velo npm ci fetches from the lockfile alone', () => {
  for (const [label, npmrc] of [
    ['with resolved URLs', {}],
    ['without resolved URLs (omit-lockfile-registry-resolved)', withoutResolved],
  ] as const) {
    it(`${label}: no packument request, each distinct tarball fetched once`, async () => {
      const p = await fx.project(ALIASED, { npmrc });
      const lock = lockOf(p);
      const entries = Object.entries(lock.packages).filter(([k]) => k !== '');
      expect(entries.some(([, e]) => e.resolved)).toBe(!('omit-lockfile-registry-resolved' in npmrc));
      const integrities = new Set(entries.map(([, e]) => e.integrity));
      // the aliases make one tarball appear at two places
      expect(entries.length).toBe(integrities.size + 1);

      await fx.registry.clearRequests();
      const r = await veloAsync(['npm', 'ci'], env(p, fx.tmp()), p.dir);
      expect(r.code, r.stderr).toBe(0);
      const reqs = await fx.registry.requests();
      expect(reqs.filter((q) => q.kind === 'packument')).toEqual([]);
      const tarballs = tarballsOf(reqs);
      expect(tarballs.length).toBe(integrities.size);
      expect(new Set(tarballs.map((q) => q.url)).size).toBe(integrities.size);
      expect(tarballsOf(reqs, 'velo-fx-shared').length).toBe(1);
      for (const alias of ['shared-one', 'shared-uno']) {
        expect(JSON.parse(readFileSync(join(p.dir, 'node_modules', alias, 'package.json'), 'utf8'))).toMatchObject({ name: 'velo-fx-shared', version: '1.0.0' });
      }
    });
  }

  it('a 404 at the conventional tarball URL falls back to the packument, for that package only', async () => {
    const p = await fx.project('basic', { npmrc: withoutResolved });
    await fx.registry.clearRequests();
    await fx.registry.setFailure({ mode: 'status', status: 404, on: 'tarball', name: '@velo-fx/hello', times: 1 });
    const r = await veloAsync(['npm', 'ci'], env(p, fx.tmp()), p.dir);
    expect(r.code, r.stderr).toBe(0);
    const reqs = await fx.registry.requests();
    expect(reqs.filter((q) => q.kind === 'packument').map((q) => q.name)).toEqual(['@velo-fx/hello']);
    expect(tarballsOf(reqs, '@velo-fx/hello').map((q) => q.status)).toEqual([404, 200]);
    expect(existsSync(join(p.dir, 'node_modules', '@velo-fx', 'hello', 'package.json'))).toBe(true);
  });

  it('a package added to a warm project fetches only that package', async () => {
    const p = await fx.project('basic', { npmrc: withoutResolved });
    const home = fx.tmp();
    const first = await veloAsync(['npm', 'ci'], env(p, home), p.dir);
    expect(first.code, first.stderr).toBe(0);
    addDependency(p, 'velo-fx-shared');
    await fx.registry.clearRequests();
    const r = await veloAsync(['npm', 'ci'], env(p, home), p.dir);
    expect(r.code, r.stderr).toBe(0);
    const reqs = await fx.registry.requests();
    expect(reqs.filter((q) => q.kind === 'packument')).toEqual([]);
    expect(tarballsOf(reqs).map((q) => q.name)).toEqual(['velo-fx-shared']);
    expect(existsSync(join(p.dir, 'node_modules', 'velo-fx-shared', 'package.json'))).toBe(true);
  });
});

describe('failures while fetching', () => {
  it('a 5xx answer is retried, and the install then succeeds', async () => {
    const p = await fx.project('basic', { npmrc: withoutResolved });
    npmrcAdd(p, { 'fetch-retries': 2, 'fetch-retry-mintimeout': 50, 'fetch-retry-maxtimeout': 200 });
    await fx.registry.clearRequests();
    await fx.registry.setFailure({ mode: 'status', status: 503, on: 'tarball', name: 'velo-fx-many-files', times: 2 });
    const r = await veloAsync(['npm', 'ci'], env(p, fx.tmp()), p.dir);
    expect(r.code, r.stderr).toBe(0);
    expect(tarballsOf(await fx.registry.requests(), 'velo-fx-many-files').map((q) => q.status)).toEqual([503, 503, 200]);
  });

  it('a body cut short is never stored: retried, or with no retries left, exit 12 and no key', async () => {
    const p = await fx.project('basic', { npmrc: withoutResolved });
    const home = fx.tmp();
    const manyFiles = lockOf(p).packages['node_modules/velo-fx-many-files']!.integrity!;
    npmrcAdd(p, { 'fetch-retries': 0 });
    await fx.registry.setFailure({ mode: 'truncate', on: 'tarball', name: 'velo-fx-many-files', times: 1 });
    const cut = await veloAsync(['npm', 'ci'], env(p, home), p.dir);
    expect(cut.code, cut.stderr).toBe(12);
    expect(cut.stderr).toMatch(/velo-fx-many-files@1\.0\.0: cannot download it .*cut short/);
    expect(existsSync(join(p.dir, 'node_modules'))).toBe(false);
    expect(keysIn(home)).not.toContain(`npm:${manyFiles}`);
    expect(velo(['verify', '--json'], { VELO_HOME: home }).code).toBe(0);

    npmrcAdd(p, { 'fetch-retries': 1, 'fetch-retry-mintimeout': 50 });
    await fx.registry.clearRequests();
    await fx.registry.setFailure({ mode: 'truncate', on: 'tarball', name: 'velo-fx-many-files', times: 1 });
    const ok = await veloAsync(['npm', 'ci'], env(p, home), p.dir);
    expect(ok.code, ok.stderr).toBe(0);
    expect(tarballsOf(await fx.registry.requests(), 'velo-fx-many-files').length).toBe(2);
    expect(keysIn(home)).toContain(`npm:${manyFiles}`);
    const fresh = await fx.project('basic', { npmrc: withoutResolved });
    const npmCi = await fresh.npm(['ci']);
    expect(npmCi.code, npmCi.stderr).toBe(0);
    expect(nm(p)).toEqual(nm(fresh));
  });

  it('a tarball failing its integrity: exit 6 naming it, no key for it, nothing installed', async () => {
    const p = await fx.project('basic', { npmrc: withoutResolved });
    const home = fx.tmp();
    const hello = lockOf(p).packages['node_modules/@velo-fx/hello']!.integrity!;
    await fx.registry.setFailure({ mode: 'tamper', on: 'tarball', name: '@velo-fx/hello' });
    const r = await veloAsync(['npm', 'ci'], env(p, home), p.dir);
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toMatch(/@velo-fx\/hello@1\.0\.0: the downloaded tarball does not match the lockfile's integrity/);
    expect(existsSync(join(p.dir, 'node_modules'))).toBe(false);
    expect(keysIn(home)).not.toContain(`npm:${hello}`);
  });

  it('the registry down: exit 12 after the retries, the previous node_modules untouched', async () => {
    const p = await fx.project('basic', { npmrc: withoutResolved });
    const home = fx.tmp();
    const first = await veloAsync(['npm', 'ci'], env(p, home), p.dir);
    expect(first.code, first.stderr).toBe(0);
    addDependency(p, 'velo-fx-shared');
    npmrcAdd(p, { 'fetch-retries': 2, 'fetch-retry-mintimeout': 50, 'fetch-retry-maxtimeout': 100 });
    const before = nm(p);
    await fx.registry.clearRequests();
    await fx.registry.setFailure({ mode: 'reset', on: 'any' });
    const r = await veloAsync(['npm', 'ci'], env(p, home), p.dir);
    expect(r.code, r.stderr).toBe(12);
    expect(r.stderr).toMatch(/velo-fx-shared@1\.0\.0: cannot download it .*3 attempts/);
    expect(tarballsOf(await fx.registry.requests(), 'velo-fx-shared').length).toBe(3);
    expect(nm(p)).toEqual(before);
  });
});
