// A lockfile and the tarballs it names come from strangers. velo npm ci
// writes nothing outside the project whatever the lockfile says: a package
// key that leaves the project is refused (exit 14, naming the key) before
// anything is written, and a sentinel tree beside the project stays byte for
// byte as it was. Where npm ci accepts the input (escaping bins, over-long
// names in a tarball), velo lays out the same node_modules as npm ci does.
// Real registry on loopback, real npm.
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assertNpmOk, type PreparedProject } from './support/npmProject.js';
import { useRegistryProjects } from './support/registryProjects.js';
import { asObject, describeDir } from './support/treeCompare.js';
import { veloAsync } from './support/runVelo.js';
import { repoRoot } from './support/paths.js';
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

  for (const projection of ['link', 'mount'] as const) {
  it(`a workspace folder that is a symlink to outside the project: velo refuses to install through it (exit 6, --projection ${projection})`, async () => {
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
    const r = await veloAsync(['npm', 'ci', '--projection', projection], { ...p.env, VELO_HOME: fx.home }, p.dir);
    // nothing was mounted or linked anywhere, not even the root's node_modules
    const mounted = await veloAsync(['umount', '--all', '--json'], { VELO_HOME: fx.home });
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toMatch(/refusing to touch .*packages\/a\/node_modules: it is not inside/);
    expect(snapshot()).toEqual(before);
    expect(existsSync(join(p.dir, 'node_modules')), mounted.stdout).toBe(false);
  });
  }
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

describe('tarball entries no filesystem can hold', () => {
  it('a 300-byte file name and a 10,000-level deep path: dropped with a warning naming the package and path, the rest installed as npm ci installs it', async () => {
    const name = 'velo-fx-long-names';
    const manifest = { name, version: '1.0.0' };
    await fx.registry.publishTarball(manifest, buildTarball([
      { path: 'package/package.json', content: JSON.stringify(manifest) },
      { path: 'package/index.js', content: 'module.exports = 1;\n' },
      { path: `package/${'n'.repeat(300)}`, content: 'too long a name\n' },
      { path: `package/${'d/'.repeat(10_000)}deep.js`, content: 'too deep\n' },
      { path: 'package/lib/ok.js', content: 'ok\n' },
    ]));
    const p = await fx.project({ name: 'untrusted-long', packageJson: { name: 'untrusted-long', version: '1.0.0', dependencies: { [name]: '1.0.0' } } });
    const npm = await p.npm(['ci']);
    assertNpmOk(npm, 'npm ci');
    expect(npm.stderr).toMatch(/TAR_ENTRY_ERROR/);
    const expected = nodeModules(p);
    rmSync(join(p.dir, 'node_modules'), { recursive: true, force: true });
    const home = fx.tmp();
    const r = await veloAsync(['npm', 'ci'], { ...p.env, VELO_HOME: home }, p.dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/velo: warning: velo-fx-long-names@1\.0\.0: dropped "n{60}…n{40}": file name too long \(300 bytes; the limit is 255\)/);
    expect(r.stderr).toMatch(/velo: warning: velo-fx-long-names@1\.0\.0: dropped "d\/d\/.*deep\.js": path excessively deep \(10001 levels; the limit is 1024\)/);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(nodeModules(p)).toEqual(expected);
    expect(Object.keys(expected)).toContain('velo-fx-long-names/lib/ok.js');
  });
});

describe('a path too long for this project', () => {
  it('an entry whose path under node_modules would pass PATH_MAX: dropped with a warning, the directories that fit made, as npm ci does', async () => {
    const name = 'velo-fx-long-path';
    const manifest = { name, version: '1.0.0' };
    // 20 directories of 200 bytes: 4 kB inside the package, fine on its own, too long under any project
    const deep = Array.from({ length: 20 }, (_, i) => `${String(i).padStart(2, '0')}${'p'.repeat(198)}`).join('/');
    await fx.registry.publishTarball(manifest, buildTarball([
      { path: 'package/package.json', content: JSON.stringify(manifest) },
      { path: 'package/index.js', content: 'module.exports = 1;\n' },
      { path: `package/${deep}/file.js`, content: 'too long a path\n' },
    ]));
    const p = await fx.project({ name: 'untrusted-longpath', packageJson: { name: 'untrusted-longpath', version: '1.0.0', dependencies: { [name]: '1.0.0' } } });
    assertNpmOk(await p.npm(['ci']), 'npm ci');
    const expected = nodeModules(p);
    rmSync(join(p.dir, 'node_modules'), { recursive: true, force: true });
    const r = await veloAsync(['npm', 'ci'], { ...p.env, VELO_HOME: fx.tmp() }, p.dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/velo: warning: velo-fx-long-path@1\.0\.0: dropped \d+ entr(y|ies) whose path in .*\/node_modules would be longer than 4095 bytes/);
    expect(nodeModules(p)).toEqual(expected);
    expect(Object.keys(expected)).toContain('velo-fx-long-path/index.js');
  });
});

/** Every file under a store's objects/ (and what is left in its tmp/). */
function storeFiles(home: string): { objects: string[]; tmp: string[] } {
  const objects = existsSync(join(home, 'objects')) ? [...describeDir(join(home, 'objects')).entries()].filter(([, d]) => d.kind === 'file').map(([k]) => k).sort() : [];
  const tmp = existsSync(join(home, 'tmp')) ? readdirSync(join(home, 'tmp')).sort() : [];
  return { objects, tmp };
}

describe('a refused tarball leaves nothing behind', () => {
  const leafIndex = readFileSync(join(repoRoot(), 'fixtures/packages/velo-fx-leaf@1.0.0/index.js'));
  const cases: [string, string, TarEntrySpec[], { tamper: boolean; code: number; message: RegExp }][] = [
    [
      'a decompression bomb',
      'velo-fx-bomb',
      [
        { path: 'package/index.js', content: leafIndex },
        { path: 'package/zeros.bin', content: Buffer.alloc(64 << 20) },
      ],
      { tamper: false, code: 4, message: /velo-fx-bomb@1\.0\.0: the tarball is damaged \(max decompression ratio exceeded/ },
    ],
    [
      'a large low-ratio tarball whose bytes do not match the lockfile',
      'velo-fx-noise-tampered',
      [
        { path: 'package/index.js', content: leafIndex },
        { path: 'package/noise.bin', content: randomBytes(24 << 20) },
        { path: 'package/README.md', content: 'A readme with letters in it.\n' },
      ],
      { tamper: true, code: 6, message: /velo-fx-noise-tampered@1\.0\.0: the downloaded tarball does not match the lockfile's integrity/ },
    ],
    [
      'a large low-ratio file followed by an entry that escapes the package',
      'velo-fx-noise-then-escape',
      [
        { path: 'package/index.js', content: leafIndex },
        { path: 'package/noise.bin', content: randomBytes(24 << 20) },
        { path: 'package/escape', type: 'symlink', linkpath: '../../../outside' },
      ],
      { tamper: false, code: 6, message: /velo-fx-noise-then-escape@1\.0\.0: the tarball contains a symlink pointing outside the package/ },
    ],
  ];
  for (const [what, name, files, expected] of cases) {
    it(`${what}: no temporary file, no new object, shared objects kept, the store sound`, async () => {
      const manifest = { name, version: '1.0.0' };
      await fx.registry.publishTarball(manifest, buildTarball([{ path: 'package/package.json', content: JSON.stringify(manifest) }, ...files]));
      const home = fx.tmp();
      // the store already holds velo-fx-leaf, whose index.js the refused package shares
      const first = await leafProject();
      expect((await veloAsync(['npm', 'ci'], { ...first.env, VELO_HOME: home }, first.dir)).code).toBe(0);
      const before = storeFiles(home);
      const p = await fx.project({ name: `untrusted-${name}`, packageJson: { name: `untrusted-${name}`, version: '1.0.0', dependencies: { [name]: '1.0.0' } } });
      if (expected.tamper) await fx.registry.setFailure({ mode: 'tamper', on: 'tarball', name });
      try {
        const r = await veloAsync(['npm', 'ci'], { ...p.env, VELO_HOME: home }, p.dir);
        expect(r.code, r.stderr).toBe(expected.code);
        expect(r.stderr).toMatch(expected.message);
      } finally {
        await fx.registry.setFailure(null);
      }
      expect(storeFiles(home)).toEqual(before);
      const verify = await veloAsync(['verify', '--json'], { VELO_HOME: home });
      expect(verify.code, verify.stdout).toBe(0);
    });
  }
});
