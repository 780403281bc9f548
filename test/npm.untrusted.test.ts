// A lockfile and the tarballs it names come from strangers. velo npm ci
// writes nothing outside the project whatever the lockfile says: a package
// key that leaves the project is refused (exit 14, naming the key) before
// anything is written, and a sentinel tree beside the project stays byte for
// byte as it was. Where npm ci accepts the input (escaping bins, over-long
// names in a tarball), velo lays out the same node_modules as npm ci does.
// Real registry on loopback, real npm.
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assertNpmOk, type PreparedProject } from './support/npmProject.js';
import { useRegistryProjects } from './support/registryProjects.js';
import { asObject, describeDir } from './support/treeCompare.js';
import { veloAsync } from './support/runVelo.js';
import { buildTarball, type TarEntrySpec } from './support/craftedTarballs.js';

const fx = useRegistryProjects('velo-npm-untrusted-');

type Lockfile = { packages: Record<string, Record<string, unknown>> };

function readLock(p: PreparedProject): Lockfile {
  return JSON.parse(readFileSync(join(p.dir, 'package-lock.json'), 'utf8')) as Lockfile;
}

function writeLock(p: PreparedProject, lock: Lockfile): void {
  writeFileSync(join(p.dir, 'package-lock.json'), JSON.stringify(lock, null, 2));
}

/** A neighbouring project with an installed package and a file of its own, beside the project. */
function plantSentinel(dir: string): () => Record<string, unknown> {
  const pkg = join(dir, 'node_modules/velo-fx-leaf');
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, 'package.json'), '{"name":"velo-fx-leaf","version":"0.0.1-victim"}\n');
  writeFileSync(join(pkg, 'SENTINEL'), 'this file belongs to another project\n');
  writeFileSync(join(dir, 'OTHER'), 'not a bin\n');
  return () => asObject(describeDir(dir, { mtimes: true }));
}

function nodeModules(p: PreparedProject): Record<string, unknown> {
  return asObject(describeDir(join(p.dir, 'node_modules'), { skip: (rel) => rel === '.package-lock.json' }));
}

async function leafProject(): Promise<PreparedProject> {
  return fx.project({ name: 'untrusted-keys', packageJson: { name: 'untrusted-keys', version: '1.0.0', dependencies: { 'velo-fx-leaf': '^1.0.0' } } });
}

describe('lockfile keys that leave the project', () => {
  const variants: [string, (victim: string) => string][] = [
    ['node_modules/../../victim/…', () => 'node_modules/../../victim/node_modules/velo-fx-leaf'],
    ['an absolute path', (victim) => join(victim, 'node_modules/velo-fx-leaf')],
    ['node_modules/x/../../../victim/…', () => 'node_modules/velo-fx-leaf/../../../victim/node_modules/velo-fx-leaf'],
  ];
  for (const [what, keyFor] of variants) {
    it(`${what}: refused with exit 14 naming the key; nothing outside (or inside) is written; npm ci leaves it alone too`, async () => {
      const p = await leafProject();
      const victim = resolve(p.dir, '../victim');
      const snapshot = plantSentinel(victim);
      const lock = readLock(p);
      const key = keyFor(victim);
      lock.packages[key] = { ...lock.packages['node_modules/velo-fx-leaf'] };
      writeLock(p, lock);
      const before = snapshot();

      const r = await veloAsync(['npm', 'ci'], { ...p.env, VELO_HOME: fx.home }, p.dir);
      expect(r.code, r.stderr).toBe(14);
      expect(r.stderr).toContain(JSON.stringify(key));
      expect(r.stderr).toMatch(/lies outside the project/);
      expect(snapshot()).toEqual(before);
      expect(existsSync(join(p.dir, 'node_modules'))).toBe(false);

      // the real npm ci on the same lockfile ignores the key and touches nothing outside either
      assertNpmOk(await p.npm(['ci']), 'npm ci');
      expect(snapshot()).toEqual(before);
      expect(readdirSync(join(p.dir, 'node_modules')).sort()).toEqual(['.package-lock.json', 'velo-fx-leaf']);
    });
  }

  it('a key inside the project but outside any node_modules velo installs (src/node_modules/…) is refused', async () => {
    const p = await leafProject();
    const lock = readLock(p);
    lock.packages['src/node_modules/velo-fx-leaf'] = { ...lock.packages['node_modules/velo-fx-leaf'] };
    writeLock(p, lock);
    mkdirSync(join(p.dir, 'src/node_modules/keep'), { recursive: true });
    writeFileSync(join(p.dir, 'src/node_modules/keep/file'), 'mine\n');
    const before = asObject(describeDir(join(p.dir, 'src'), { mtimes: true }));
    const r = await veloAsync(['npm', 'ci'], { ...p.env, VELO_HOME: fx.home }, p.dir);
    expect(r.code, r.stderr).toBe(14);
    expect(r.stderr).toContain('"src/node_modules/velo-fx-leaf"');
    expect(asObject(describeDir(join(p.dir, 'src'), { mtimes: true }))).toEqual(before);
    expect(existsSync(join(p.dir, 'node_modules'))).toBe(false);
  });

  it('a workspace folder that is a symlink to outside the project: velo refuses to install through it (exit 6)', async () => {
    const p = await fx.project({
      name: 'untrusted-ws',
      // a conflicting version at the root keeps the workspace's own copy in packages/a/node_modules
      packageJson: { name: 'untrusted-ws', version: '1.0.0', workspaces: ['packages/*'], dependencies: { 'velo-fx-shared': '2.0.0' } },
      files: { 'packages/a/package.json': JSON.stringify({ name: 'a', version: '1.0.0', dependencies: { 'velo-fx-shared': '1.0.0' } }) },
    });
    expect(Object.keys(readLock(p).packages)).toContain('packages/a/node_modules/velo-fx-shared');
    // the workspace folder is swapped for a symlink to a folder outside the project
    const outside = resolve(p.dir, '../elsewhere');
    cpSync(join(p.dir, 'packages/a'), outside, { recursive: true });
    const snapshot = plantSentinel(outside);
    rmSync(join(p.dir, 'packages/a'), { recursive: true });
    symlinkSync(outside, join(p.dir, 'packages/a'));
    const before = snapshot();
    const r = await veloAsync(['npm', 'ci'], { ...p.env, VELO_HOME: fx.home }, p.dir);
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toMatch(/refusing to touch .*packages\/a\/node_modules: it is not inside/);
    expect(snapshot()).toEqual(before);
  });
});

/** Publish a package whose files are given; its manifest (and so the lockfile) carries `bin`. */
async function publishWithBins(name: string, bin: unknown, files: Record<string, string>): Promise<void> {
  const manifest = { name, version: '1.0.0', bin };
  const entries: TarEntrySpec[] = [{ path: 'package/package.json', content: JSON.stringify(manifest) }];
  for (const [path, content] of Object.entries(files)) entries.push({ path: `package/${path}`, content, mode: 0o755 });
  await fx.registry.publishTarball(manifest, buildTarball(entries));
}

/** Every .bin link: its text, and whether it stays inside the package it belongs to. */
function binLinks(p: PreparedProject): Record<string, string> {
  const dir = join(p.dir, 'node_modules/.bin');
  const out: Record<string, string> = {};
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir).sort()) out[name] = readlinkSync(join(dir, name));
  return out;
}

describe('bins whose names or targets leave the package', () => {
  const EVIL_BINS = {
    x: '../../x',
    other: '../../../../victim/OTHER',
    abs: '/etc/hostname',
    '../../evil-name': 'cli.js',
    'a:b': 'cli.js',
    gone: '../../not-in-the-package',
    ok: './cli.js',
    dot: '.',
  };
  const FILES = { 'cli.js': '#!/usr/bin/env node\n', x: 'x\n', 'victim/OTHER': 'packaged\n', 'etc/hostname': 'packaged\n' };

  for (const where of ['the package manifest', 'the lockfile only'] as const) {
    it(`from ${where}: velo makes exactly npm ci's .bin links, none leaving its package`, async () => {
      const name = where === 'the lockfile only' ? 'velo-fx-bins-lock' : 'velo-fx-bins-manifest';
      await publishWithBins(name, where === 'the lockfile only' ? { ok: 'cli.js' } : EVIL_BINS, FILES);
      const p = await fx.project({ name: `untrusted-${name}`, packageJson: { name: `untrusted-${name}`, version: '1.0.0', dependencies: { [name]: '1.0.0' } } });
      if (where === 'the lockfile only') {
        const lock = readLock(p);
        lock.packages[`node_modules/${name}`]!.bin = EVIL_BINS;
        writeLock(p, lock);
      }
      const victim = resolve(p.dir, '../victim');
      const snapshot = plantSentinel(victim);
      const before = snapshot();

      assertNpmOk(await p.npm(['ci']), 'npm ci');
      const expected = nodeModules(p);
      const expectedBins = binLinks(p);
      // npm's rules: names cut to their last component, targets clamped into the package, missing targets not linked
      expect(Object.keys(expectedBins)).toEqual(['abs', 'b', 'evil-name', 'ok', 'other', 'x']);
      rmSync(join(p.dir, 'node_modules'), { recursive: true, force: true });
      const r = await veloAsync(['npm', 'ci'], { ...p.env, VELO_HOME: fx.home }, p.dir);
      expect(r.code, r.stderr).toBe(0);
      expect(binLinks(p)).toEqual(expectedBins);
      expect(nodeModules(p)).toEqual(expected);
      expect(snapshot()).toEqual(before);
      const pkgDir = realpathSync(join(p.dir, 'node_modules', name));
      for (const link of Object.keys(binLinks(p))) {
        const target = resolve(join(p.dir, 'node_modules/.bin'), readlinkSync(join(p.dir, 'node_modules/.bin', link)));
        expect(target.startsWith(pkgDir + '/'), `${link} -> ${target}`).toBe(true);
        expect(dirname(join(p.dir, 'node_modules/.bin', link))).toBe(join(p.dir, 'node_modules/.bin'));
      }
    });
  }
});
