// git dependencies, compared with the real npm ci on the same lockfile: npm
// clones the repository at the locked commit, installs the package's
// dependencies (dev included, from the registry) to run its `prepare`
// script, and packs the result. velo does the same through npm's own pacote
// and arborist, and keeps the packed package in the store under a key naming
// the commit: a second project gets it from the store, with no clone (the
// repositories are moved away to prove it). Repositories are local bare
// repositories served over file:// — the machine has no GitHub.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assertNpmOk, type PreparedProject, type ProjectSpec } from './support/npmProject.js';
import { useRegistryProjects } from './support/registryProjects.js';
import { asObject, describeDir } from './support/treeCompare.js';
import { veloAsync } from './support/runVelo.js';
import { packageKey } from '../src/npm/packageKey.js';

const fx = useRegistryProjects('velo-npm-git-');

function git(args: string[], cwd: string): string {
  const r = spawnSync('git', ['-c', 'user.name=velo test', '-c', 'user.email=test@velo.invalid', '-c', 'init.defaultBranch=main', ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' },
  });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim();
}

/** A bare repository holding one commit of these files; returns its file:// URL with the commit. */
function bareRepo(parent: string, name: string, files: Record<string, string>): { bare: string; spec: string } {
  const work = join(parent, `${name}-work`);
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(work, rel)), { recursive: true });
    writeFileSync(join(work, rel), text);
  }
  git(['init', '-q'], work);
  git(['add', '-A'], work);
  git(['commit', '-q', '-m', 'v1'], work);
  const sha = git(['rev-parse', 'HEAD'], work);
  const bare = join(parent, `${name}.git`);
  git(['clone', '-q', '--bare', work, bare], parent);
  return { bare, spec: `git+file://${bare}#${sha}` };
}

/** Two repositories: one whose prepare script builds a file with a devDependency's bin, one plain. */
function repos(parent: string): { prepared: { bare: string; spec: string }; plain: { bare: string; spec: string } } {
  const prepared = bareRepo(parent, 'velo-git-prepared', {
    'package.json': JSON.stringify({
      name: 'velo-git-prepared',
      version: '1.0.0',
      main: 'index.js',
      bin: { 'git-prepared': 'cli.js' },
      scripts: { prepare: 'fx-devtool > built.txt' },
      devDependencies: { 'velo-fx-devtool': '^1.0.0' },
    }),
    'index.js': "module.exports = require('fs').readFileSync(__dirname + '/built.txt', 'utf8');\n",
    'cli.js': '#!/usr/bin/env node\nconsole.log(require("./index.js"));\n',
  });
  const plain = bareRepo(parent, 'velo-git-plain', {
    'package.json': JSON.stringify({ name: 'velo-git-plain', version: '2.0.0', main: 'index.js', dependencies: { 'velo-fx-leaf': '^1.0.0' } }),
    'index.js': "module.exports = 'plain';\n",
  });
  return { prepared, plain };
}

function spec(r: ReturnType<typeof repos>): ProjectSpec {
  return {
    name: 'git-deps',
    packageJson: {
      name: 'git-deps',
      version: '1.0.0',
      private: true,
      dependencies: { 'velo-git-prepared': r.prepared.spec, 'velo-git-plain': r.plain.spec, 'velo-fx-shared': '^2.0.0' },
    },
  };
}

function snapshot(dir: string): { tree: Record<string, unknown>; hidden: string[] } {
  const hidden = JSON.parse(readFileSync(join(dir, 'node_modules/.package-lock.json'), 'utf8')) as { packages: object };
  return {
    tree: asObject(describeDir(join(dir, 'node_modules'), { skip: (rel) => rel === '.package-lock.json' })),
    hidden: Object.keys(hidden.packages).sort(),
  };
}

async function veloCi(p: PreparedProject, home: string): Promise<Record<string, unknown>> {
  const r = await veloAsync(['npm', 'ci', '--json'], { ...p.env, VELO_HOME: home }, p.dir);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

describe('git dependencies', () => {
  it('installed as npm ci installs them (prepare run with dev dependencies, packed); a second project gets them from the store, no clone', async () => {
    const r = repos(fx.tmp());
    const [npmP, veloP, second] = await Promise.all([fx.project(spec(r)), fx.project(spec(r)), fx.project(spec(r))]);
    const lock = (await npmP.lockfile()) as { packages: Record<string, { resolved?: string }> };
    expect(lock.packages['node_modules/velo-git-prepared']?.resolved).toBe(r.prepared.spec);

    assertNpmOk(await npmP.npm(['ci']), 'npm ci');
    const expected = snapshot(npmP.dir);
    // what npm does, spelled out: prepare ran with the devDependency's bin, and the
    // devDependency itself is not installed in the project
    expect(readFileSync(join(npmP.dir, 'node_modules/velo-git-prepared/built.txt'), 'utf8')).toBe('fx-devtool\n');
    expect(expected.tree['velo-fx-devtool']).toBeUndefined();
    expect(expected.tree['.bin/git-prepared']).toEqual({ kind: 'symlink', target: '../velo-git-prepared/cli.js' });

    const home = fx.tmp();
    const first = await veloCi(veloP, home);
    expect(first).toMatchObject({ noop: false });
    expect(snapshot(veloP.dir)).toEqual(expected);
    const run = spawnSync(join(veloP.dir, 'node_modules/.bin/git-prepared'), { encoding: 'utf8' });
    expect(run.stdout).toBe('fx-devtool\n\n');

    // the repositories go away: the second project can only get the packages from the store
    for (const { bare } of [r.prepared, r.plain]) renameSync(bare, `${bare}.gone`);
    const again = await veloCi(second, home);
    expect(again).toMatchObject({ noop: false, fetched: 0 });
    expect(snapshot(second.dir)).toEqual(expected);
  });

  it('--ignore-scripts: packed without prepare, as npm does, and never given to an install that runs scripts', async () => {
    const r = repos(fx.tmp());
    const [npmP, veloP] = await Promise.all([fx.project(spec(r)), fx.project(spec(r))]);
    assertNpmOk(await npmP.npm(['ci', '--ignore-scripts']), 'npm ci --ignore-scripts');
    const expected = snapshot(npmP.dir);
    expect(expected.tree['velo-git-prepared/built.txt']).toBeUndefined();
    const home = fx.tmp();
    const r1 = await veloAsync(['npm', 'ci', '--ignore-scripts'], { ...veloP.env, VELO_HOME: home }, veloP.dir);
    expect(r1.code, r1.stderr).toBe(0);
    expect(snapshot(veloP.dir)).toEqual(expected);
    // the same store, scripts allowed: the prepared package, not the unprepared one
    await veloCi(veloP, home);
    expect(readFileSync(join(veloP.dir, 'node_modules/velo-git-prepared/built.txt'), 'utf8')).toBe('fx-devtool\n');
  });

  it('allow-git=none refuses the git dependency as npm refuses it, even when the store has it', async () => {
    const r = repos(fx.tmp());
    const [npmP, veloP] = await Promise.all([fx.project(spec(r)), fx.project(spec(r))]);
    const npm = await npmP.npm(['ci', '--allow-git=none']);
    expect(npm.code).not.toBe(0);
    expect(npm.stderr).toMatch(/"git" have been disabled/);
    const home = fx.tmp();
    await veloCi(veloP, home); // the store has both packages now
    const refused = await veloAsync(['npm', 'ci', '--allow-git=none'], { ...veloP.env, VELO_HOME: home }, veloP.dir);
    expect(refused.code).toBe(16);
    expect(refused.stderr).toMatch(/velo-git-(plain|prepared)@.*"git" is disabled \(allow-git=none\)/);
    // root: both are the project's own dependencies, so both are allowed, as with npm
    assertNpmOk(await npmP.npm(['ci', '--allow-git=root']), 'npm ci --allow-git=root');
    const root = await veloAsync(['npm', 'ci', '--allow-git=root'], { ...veloP.env, VELO_HOME: home }, veloP.dir);
    expect(root.code, root.stderr).toBe(0);
  });

  it('a repository that cannot be cloned: a clear error, and the previous node_modules stays', async () => {
    const r = repos(fx.tmp());
    const p = await fx.project(spec(r));
    renameSync(r.plain.bare, `${r.plain.bare}.gone`);
    mkdirSync(join(p.dir, 'node_modules/previous'), { recursive: true });
    writeFileSync(join(p.dir, 'node_modules/previous/keep.txt'), 'mine\n');
    const res = await veloAsync(['npm', 'ci'], { ...p.env, VELO_HOME: fx.tmp() }, p.dir);
    expect(res.code).not.toBe(0);
    expect(res.code).not.toBe(70); // never "internal error"
    // git's own words name the repository it could not read
    expect(res.stderr).toMatch(/velo-git-plain@2\.0\.0 \(git\+file:.*\): git failed:\n.*velo-git-plain\.git/);
    expect(readFileSync(join(p.dir, 'node_modules/previous/keep.txt'), 'utf8')).toBe('mine\n');
    expect(existsSync(join(p.dir, 'node_modules/velo-git-prepared'))).toBe(false);
  });

  it('the store key names the repository and the commit, never credentials; an unpinned ref has no key', () => {
    const sha = '0123456789abcdef0123456789abcdef01234567';
    const key = (resolved: string): string | undefined => packageKey({ integrity: undefined, resolved });
    // what npm writes to the lockfile for github:user/repo#…, git+https with a token, git+file
    expect(key(`git+ssh://git@github.com/user/repo.git#${sha}`)).toBe(`npm-git:git+ssh://github.com/user/repo.git#${sha}`);
    expect(key(`git+https://user:s3cret@git.example.com/team/repo.git#${sha}`)).toBe(`npm-git:git+https://git.example.com/team/repo.git#${sha}`);
    expect(key(`git+file:///srv/repos/repo.git#${sha}`)).toBe(`npm-git:git+file:///srv/repos/repo.git#${sha}`);
    expect(key(`git://git.example.com/team/repo.git#${sha}`)).toBe(`npm-git:git://git.example.com/team/repo.git#${sha}`);
    expect(key('git+https://git.example.com/team/repo.git#main')).toBeUndefined();
    // --ignore-scripts packs the clone without its prepare script: not the same package
    expect(packageKey({ integrity: undefined, resolved: `git+file:///srv/repos/repo.git#${sha}` }, true)).toBe(`npm-git:unprepared:git+file:///srv/repos/repo.git#${sha}`);
  });
});
