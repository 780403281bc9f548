// velo npm install <pkg>, uninstall and update let the user's npm edit
// package.json and the lockfile (--package-lock-only), then install the
// result through the store; every other `velo npm` command is npm itself,
// with its arguments, output and exit code. Each case runs the real npm in a
// twin project with the same starting point and compares what a user would:
// package.json, the lockfile's packages, node_modules.
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assertNpmOk, type PreparedProject, type ProjectSpec } from './support/npmProject.js';
import { useRegistryProjects } from './support/registryProjects.js';
import { asObject, describeDir } from './support/treeCompare.js';
import { veloAsync } from './support/runVelo.js';

const fx = useRegistryProjects('velo-npm-commands-');
const project = (spec: string | ProjectSpec): Promise<PreparedProject> => fx.project(spec);

/** a second project with the same files as p (package.json, lockfile, .npmrc), for the real npm */
async function twinOf(p: PreparedProject, spec: string | ProjectSpec): Promise<PreparedProject> {
  const t = await project(spec);
  for (const f of ['package.json', 'package-lock.json']) cpSync(join(p.dir, f), join(t.dir, f));
  return t;
}

const veloNpm = (p: PreparedProject, args: string[]) => veloAsync(['npm', ...args], { ...p.env, VELO_HOME: fx.home }, p.dir);
const pkgJson = (p: PreparedProject) => JSON.parse(readFileSync(join(p.dir, 'package.json'), 'utf8')) as Record<string, unknown>;
/** the lockfile's packages, without the root entry's name (the twin directories differ) */
const lockPackages = (p: PreparedProject) => {
  const lock = JSON.parse(readFileSync(join(p.dir, 'package-lock.json'), 'utf8')) as { packages: Record<string, Record<string, unknown>> };
  const { name: _name, ...root } = lock.packages['']!;
  return { ...lock.packages, '': root };
};
const nodeModules = (p: PreparedProject) => asObject(describeDir(join(p.dir, 'node_modules'), { skip: (rel) => rel === '.package-lock.json' }));

async function expectNpmSeesItCurrent(p: PreparedProject): Promise<void> {
  const ls = await p.npm(['ls', '--all']);
  expect(ls.code, ls.stdout + ls.stderr).toBe(0);
  const dry = await p.npm(['install', '--dry-run']);
  expect(dry.stdout + dry.stderr).toMatch(/up to date/);
}

describe('commands that change dependencies: npm edits, velo installs', () => {
  it('install <pkg> adds it as npm install <pkg> does, laid out from the store', async () => {
    const p = await project('basic');
    expect((await veloNpm(p, ['ci'])).code).toBe(0);
    const twin = await twinOf(p, 'basic');
    assertNpmOk(await twin.npm(['ci']), 'npm ci');

    const r = await veloNpm(p, ['install', 'velo-fx-leaf', '--json']);
    expect(r.code, r.stderr).toBe(0);
    assertNpmOk(await twin.npm(['install', 'velo-fx-leaf']), 'npm install velo-fx-leaf');

    expect(pkgJson(p).dependencies).toMatchObject({ 'velo-fx-leaf': '^1.0.0' });
    expect(pkgJson(p)).toEqual({ ...pkgJson(twin), name: pkgJson(p).name });
    expect(lockPackages(p)).toEqual(lockPackages(twin));
    expect(existsSync(join(p.dir, 'node_modules', 'velo-fx-leaf', 'package.json'))).toBe(true);
    expect(nodeModules(p)).toEqual(nodeModules(twin));
    await expectNpmSeesItCurrent(p);
  });

  it('uninstall <pkg> removes it as npm uninstall does', async () => {
    const p = await project('basic');
    expect((await veloNpm(p, ['ci'])).code).toBe(0);
    const twin = await twinOf(p, 'basic');
    assertNpmOk(await twin.npm(['ci']), 'npm ci');

    const r = await veloNpm(p, ['uninstall', 'velo-fx-chain-a']);
    expect(r.code, r.stderr).toBe(0);
    assertNpmOk(await twin.npm(['uninstall', 'velo-fx-chain-a']), 'npm uninstall');

    expect(Object.keys(pkgJson(p).dependencies as object)).not.toContain('velo-fx-chain-a');
    expect(lockPackages(p)).toEqual(lockPackages(twin));
    expect(existsSync(join(p.dir, 'node_modules', 'velo-fx-chain-a'))).toBe(false);
    expect(existsSync(join(p.dir, 'node_modules', 'velo-fx-chain-c'))).toBe(false); // its dependencies went with it
    expect(nodeModules(p)).toEqual(nodeModules(twin));
    await expectNpmSeesItCurrent(p);
  });

  it('update moves a dependency within its range as npm update does', async () => {
    const spec = (range: string): ProjectSpec => ({ name: 'update', packageJson: { name: 'velo-fx-project-update', version: '1.0.0', private: true, dependencies: { 'velo-fx-shared': range } } });
    const p = await project(spec('1.0.0')); // locked at 1.0.0 …
    const twin = await twinOf(p, spec('1.0.0'));
    for (const d of [p, twin]) {
      const pj = pkgJson(d);
      (pj.dependencies as Record<string, string>)['velo-fx-shared'] = '>=1.0.0'; // … then the range widened by hand
      writeFileSync(join(d.dir, 'package.json'), JSON.stringify(pj, null, 2) + '\n');
    }
    const r = await veloNpm(p, ['update']);
    expect(r.code, r.stderr).toBe(0);
    assertNpmOk(await twin.npm(['update']), 'npm update');

    const version = (d: PreparedProject) => (JSON.parse(readFileSync(join(d.dir, 'node_modules', 'velo-fx-shared', 'package.json'), 'utf8')) as { version: string }).version;
    expect(version(p)).toBe('2.0.0');
    expect(version(twin)).toBe('2.0.0');
    expect(lockPackages(p)).toEqual(lockPackages(twin));
    expect(nodeModules(p)).toEqual(nodeModules(twin));
    await expectNpmSeesItCurrent(p);
  });
});

describe('every other command is npm itself', () => {
  const scripted: ProjectSpec = {
    name: 'passthrough',
    packageJson: {
      name: 'velo-fx-project-passthrough', version: '1.0.0', private: true,
      scripts: { hello: 'node -e "console.log(process.argv.slice(1).join(\' \'))" --', fail: 'node -e "process.exit(3)"' },
      dependencies: { 'velo-fx-leaf': '^1.0.0' },
    },
  };

  it('velo npm run passes arguments through and returns the script\'s output and exit code', async () => {
    const p = await project(scripted);
    const ok = await veloNpm(p, ['run', 'hello', '--', 'a', 'b c']);
    const npmOk = await p.npm(['run', 'hello', '--', 'a', 'b c']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe(npmOk.stdout);
    expect(ok.stdout).toContain('a b c');
    const bad = await veloNpm(p, ['run', 'fail']);
    const npmBad = await p.npm(['run', 'fail']);
    expect(npmBad.code).not.toBe(0);
    expect(bad.code).toBe(npmBad.code);
    expect(existsSync(join(p.dir, 'node_modules'))).toBe(false); // nothing installed by a command that installs nothing
  });

  it('velo npm view and pkg answer as npm does, and an unknown command fails as npm fails', async () => {
    const p = await project(scripted);
    for (const args of [['view', 'velo-fx-shared', 'versions', '--json'], ['pkg', 'get', 'name', 'scripts.fail']]) {
      const v = await veloNpm(p, args);
      const n = await p.npm(args);
      expect(v.code, v.stderr).toBe(0);
      expect(v.stdout).toBe(n.stdout);
    }
    const v = await veloNpm(p, ['no-such-command']);
    const n = await p.npm(['no-such-command']);
    expect(n.code).not.toBe(0);
    expect(v.code).toBe(n.code);
  });
});
