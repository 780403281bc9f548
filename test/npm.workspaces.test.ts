// Workspaces' own lifecycle scripts and bins, compared with the real npm ci on
// the same project: the same node_modules (with .bin), the same workspace
// folders afterwards (what prepare built, which bin targets were made
// executable), and the same scripts in the same order. Each case runs npm in
// one copy of the project and velo in another, made from the same spec.
import { chmodSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assertNpmOk, type PreparedProject, type ProjectSpec } from './support/npmProject.js';
import { useRegistryProjects } from './support/registryProjects.js';
import { asObject, describeDir } from './support/treeCompare.js';
import { veloAsync } from './support/runVelo.js';

const fx = useRegistryProjects('velo-npm-ws-');

/** A script appending `who:event` to the project's log.txt (from a workspace, two levels down). */
function logLine(who: string, event: string, fromWorkspace = true): string {
  const log = fromWorkspace ? '../../log.txt' : 'log.txt';
  return `node -e "require('fs').appendFileSync('${log}', '${who}:${event}\\n')"`;
}

function lifecycle(who: string, prepareFirst = ''): Record<string, string> {
  return {
    preinstall: logLine(who, 'preinstall'),
    install: logLine(who, 'install'),
    postinstall: logLine(who, 'postinstall'),
    prepare: `${prepareFirst}${logLine(who, 'prepare')}`,
  };
}

// ws-a: a bin built by its prepare script, one never built; ws-b (depends on
// ws-a): a bin present but not executable in the source; ws-c: no scripts,
// one bin present, one missing. The root has a postinstall of its own.
const SPEC: ProjectSpec = {
  name: 'ws-scripts',
  packageJson: {
    name: 'ws-scripts-root',
    version: '1.0.0',
    private: true,
    workspaces: ['packages/*'],
    dependencies: { 'velo-fx-leaf': '^1.0.0' },
    scripts: { postinstall: logLine('root', 'postinstall', false) },
  },
  files: {
    'packages/a/package.json': JSON.stringify({
      name: 'ws-a',
      version: '1.0.0',
      bin: { 'ws-a-built': 'dist/cli.js', 'ws-a-never': 'dist/never.js' },
      scripts: lifecycle('a', `node -e "require('fs').mkdirSync('dist',{recursive:true});require('fs').writeFileSync('dist/cli.js','#!/usr/bin/env node\\n')" && `),
    }),
    'packages/b/package.json': JSON.stringify({
      name: 'ws-b',
      version: '1.0.0',
      bin: 'bin.js',
      dependencies: { 'ws-a': '1.0.0', 'velo-fx-shared': '^1.0.0' },
      scripts: lifecycle('b'),
    }),
    'packages/b/bin.js': '#!/usr/bin/env node\n',
    'packages/c/package.json': JSON.stringify({ name: 'ws-c', version: '1.0.0', bin: { 'ws-c': 'c.js', 'ws-c-missing': 'missing.js' } }),
    'packages/c/c.js': '#!/usr/bin/env node\n',
  },
};

interface Outcome {
  nodeModules: Record<string, unknown>;
  hiddenLockfileKeys: string[];
  workspaces: Record<string, unknown>;
  log: string[];
}

function outcome(dir: string): Outcome {
  const hidden = join(dir, 'node_modules/.package-lock.json');
  return {
    nodeModules: asObject(describeDir(join(dir, 'node_modules'), { skip: (rel) => rel === '.package-lock.json' })),
    hiddenLockfileKeys: existsSync(hidden) ? Object.keys((JSON.parse(readFileSync(hidden, 'utf8')) as { packages: object }).packages).sort() : [],
    workspaces: asObject(describeDir(join(dir, 'packages'), { skip: (rel) => rel.includes('node_modules') })),
    log: existsSync(join(dir, 'log.txt')) ? readFileSync(join(dir, 'log.txt'), 'utf8').trim().split('\n') : [],
  };
}

/** npm runs each event's scripts of all workspaces concurrently: their order within one event is not fixed. */
function byEvent(log: string[]): string[][] {
  const groups: string[][] = [];
  const phase = (line: string): string => (line.startsWith('root:') ? line : line.split(':')[1]!);
  for (const line of log) {
    const last = groups[groups.length - 1];
    if (last && phase(last[0]!) === phase(line)) last.push(line);
    else groups.push([line]);
  }
  return groups.map((g) => g.sort());
}

async function pair(): Promise<{ npmP: PreparedProject; veloP: PreparedProject }> {
  const [npmP, veloP] = await Promise.all([fx.project(SPEC), fx.project(SPEC)]);
  // the source trees start alike: bin.js not executable
  for (const p of [npmP, veloP]) chmodSync(join(p.dir, 'packages/b/bin.js'), 0o644);
  return { npmP, veloP };
}

async function veloCi(p: PreparedProject, args: string[], home = fx.home): Promise<Record<string, unknown>> {
  const r = await veloAsync(['npm', ...args, '--json'], { ...p.env, VELO_HOME: home }, p.dir);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

function expectSame(velo: Outcome, npm: Outcome): void {
  expect(velo.nodeModules).toEqual(npm.nodeModules);
  expect(velo.hiddenLockfileKeys).toEqual(npm.hiddenLockfileKeys);
  expect(velo.workspaces).toEqual(npm.workspaces);
  expect(byEvent(velo.log)).toEqual(byEvent(npm.log));
}

describe('workspaces: lifecycle scripts and bins as npm ci', () => {
  it('npm ci: scripts in npm order, a bin built by prepare linked, a missing bin target not linked', async () => {
    const { npmP, veloP } = await pair();
    assertNpmOk(await npmP.npm(['ci']), 'npm ci');
    const npm = outcome(npmP.dir);
    // what npm does, spelled out (so a change in npm shows here, not as a silent pass)
    expect(byEvent(npm.log)).toEqual([
      ['a:preinstall', 'b:preinstall'],
      ['a:prepare', 'b:prepare'],
      ['a:install', 'b:install'],
      ['a:postinstall', 'b:postinstall'],
      ['root:postinstall'],
    ]);
    expect(npm.nodeModules['.bin/ws-a-built']).toEqual({ kind: 'symlink', target: '../ws-a/dist/cli.js' });
    expect(npm.nodeModules['.bin/ws-a-never']).toBeUndefined();
    expect(npm.nodeModules['.bin/ws-c-missing']).toBeUndefined();

    const summary = await veloCi(veloP, ['ci']);
    expect(summary).toMatchObject({ noop: false });
    expectSame(outcome(veloP.dir), npm);
  });

  it('a dependency with install scripts and workspaces with scripts: each script runs once, dependencies first', async () => {
    const both: ProjectSpec = {
      name: 'ws-and-deps',
      packageJson: { name: 'ws-and-deps', version: '1.0.0', private: true, workspaces: ['packages/*'], dependencies: { 'velo-fx-scripted': '^1.0.0' } },
      files: {
        'packages/a/package.json': JSON.stringify({
          name: 'ws-a',
          version: '1.0.0',
          // records whether the dependency's postinstall already ran when the workspace's first script runs
          scripts: { ...lifecycle('a'), preinstall: `node -e "const fs=require('fs');fs.appendFileSync('../../log.txt','a:preinstall dep-built=' + fs.existsSync('../../node_modules/velo-fx-scripted/built.txt') + '\\n')"` },
        }),
      },
    };
    const [npmP, veloP] = await Promise.all([fx.project(both), fx.project(both)]);
    assertNpmOk(await npmP.npm(['ci']), 'npm ci');
    await veloCi(veloP, ['ci']);
    const order = (p: PreparedProject): string => readFileSync(join(p.dir, 'node_modules/velo-fx-scripted/order.txt'), 'utf8');
    expect(order(npmP)).toBe('preinstall\ninstall\npostinstall\n');
    expect(order(veloP)).toBe(order(npmP));
    expect(outcome(npmP.dir).log).toEqual(['a:preinstall dep-built=true', 'a:prepare', 'a:install', 'a:postinstall']);
    expect(outcome(veloP.dir).log).toEqual(outcome(npmP.dir).log);
  });

  it('an unchanged project: npm ci runs the workspaces\' scripts again, and so does the velo no-op', async () => {
    const { npmP, veloP } = await pair();
    assertNpmOk(await npmP.npm(['ci']), 'npm ci');
    assertNpmOk(await npmP.npm(['ci']), 'npm ci (again)');
    await veloCi(veloP, ['ci']);
    const again = await veloCi(veloP, ['ci']);
    expect(again).toMatchObject({ noop: true, rootScripts: ['postinstall'] });
    const npm = outcome(npmP.dir);
    expect(npm.log.filter((l) => l === 'a:prepare')).toHaveLength(2);
    expectSame(outcome(veloP.dir), npm);
    // and the project is still a no-op after the scripts ran
    expect(await veloCi(veloP, ['ci'])).toMatchObject({ noop: true });
  });

  it('--ignore-scripts: no script runs, and a bin whose target prepare would build is not linked', async () => {
    const { npmP, veloP } = await pair();
    assertNpmOk(await npmP.npm(['ci', '--ignore-scripts']), 'npm ci --ignore-scripts');
    const npm = outcome(npmP.dir);
    expect(npm.log).toEqual([]);
    expect(npm.nodeModules['.bin/ws-a-built']).toBeUndefined();
    expect(npm.nodeModules['.bin/ws-c']).toBeDefined();
    await veloCi(veloP, ['ci', '--ignore-scripts']);
    expectSame(outcome(veloP.dir), npm);
  });

  it('a failing workspace script fails the install as npm ci fails, naming the workspace and the script; the previous node_modules stays', async () => {
    const failing: ProjectSpec = {
      ...SPEC,
      name: 'ws-failing',
      files: {
        ...SPEC.files,
        'packages/c/package.json': JSON.stringify({ name: 'ws-c', version: '1.0.0', scripts: { postinstall: 'exit 3' } }),
      },
    };
    const [npmP, veloP] = await Promise.all([fx.project(failing), fx.project(failing)]);
    const npm = await npmP.npm(['ci']);
    expect(npm.code).not.toBe(0);
    expect(npm.stderr).toMatch(/packages\/c\n/);
    await veloCi(veloP, ['ci', '--ignore-scripts']);
    const before = outcome(veloP.dir).nodeModules;
    const r = await veloAsync(['npm', 'ci'], { ...veloP.env, VELO_HOME: fx.home }, veloP.dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ws-c@1\.0\.0 postinstall script failed \(exit 3\)/);
    expect(outcome(veloP.dir).nodeModules).toEqual(before);
  });

  for (const viaManifest of [false, true]) {
    it(`a workspace's nested node_modules from an earlier lockfile is emptied, as npm ci empties it${viaManifest ? ' (laid out from another project\'s recorded result)' : ''}`, async () => {
      const nested = (range: string): ProjectSpec => ({
        name: 'ws-nested',
        packageJson: { name: 'ws-nested', version: '1.0.0', private: true, workspaces: ['packages/*'], dependencies: { 'velo-fx-shared': '^2.0.0' } },
        files: { 'packages/b/package.json': JSON.stringify({ name: 'ws-b', version: '1.0.0', dependencies: { 'velo-fx-shared': range } }) },
      });
      const [npmP, veloP] = await Promise.all([fx.project(nested('^1.0.0')), fx.project(nested('^1.0.0'))]);
      const home = fx.tmp();
      assertNpmOk(await npmP.npm(['ci']), 'npm ci');
      await veloCi(veloP, ['ci'], home);
      for (const p of [npmP, veloP]) {
        expect(existsSync(join(p.dir, 'packages/b/node_modules/velo-fx-shared'))).toBe(true);
        // ws-b now takes the hoisted 2.x: nothing nested in the new lockfile
        writeFileSync(join(p.dir, 'packages/b/package.json'), JSON.stringify({ name: 'ws-b', version: '1.0.0', dependencies: { 'velo-fx-shared': '^2.0.0' } }));
        assertNpmOk(await p.npm(['install', '--package-lock-only', '--ignore-scripts']), 'npm install --package-lock-only');
      }
      if (viaManifest) {
        // another checkout with the same inputs records its result first
        const other = await fx.project(nested('^2.0.0'));
        writeFileSync(join(other.dir, 'package-lock.json'), readFileSync(join(veloP.dir, 'package-lock.json')));
        // (the same npm configuration too: the sandbox paths are in npm_config_* variables, which are inputs)
        const r = await veloAsync(['npm', 'ci', '--json'], { ...veloP.env, VELO_HOME: home }, other.dir);
        expect(r.code, r.stderr).toBe(0);
      }
      assertNpmOk(await npmP.npm(['ci']), 'npm ci');
      const npm = asObject(describeDir(join(npmP.dir, 'packages/b')));
      expect(npm['node_modules']).toEqual({ kind: 'dir' });
      expect(npm['node_modules/velo-fx-shared']).toBeUndefined();
      expect(await veloCi(veloP, ['ci'], home)).toMatchObject({ fromProjectCache: viaManifest });
      expect(asObject(describeDir(join(veloP.dir, 'packages/b')))).toEqual(npm);
      expect(outcome(veloP.dir).nodeModules).toEqual(outcome(npmP.dir).nodeModules);
    });
  }

  it('a workspace folder that is a symlink out of the project: its node_modules is never emptied', async () => {
    const p = await fx.project({
      name: 'ws-outside',
      packageJson: { name: 'ws-outside', version: '1.0.0', private: true, workspaces: ['packages/*'], dependencies: { 'velo-fx-leaf': '^1.0.0' } },
      files: { 'packages/a/package.json': JSON.stringify({ name: 'ws-a', version: '1.0.0' }) },
    });
    const outside = join(fx.tmp(), 'elsewhere');
    mkdirSync(join(outside, 'node_modules/theirs'), { recursive: true });
    writeFileSync(join(outside, 'package.json'), JSON.stringify({ name: 'ws-elsewhere', version: '1.0.0' }));
    writeFileSync(join(outside, 'node_modules/theirs/keep.txt'), 'sentinel\n');
    symlinkSync(outside, join(p.dir, 'packages/elsewhere'));
    assertNpmOk(await p.npm(['install', '--package-lock-only', '--ignore-scripts']), 'npm install --package-lock-only');
    const before = asObject(describeDir(outside));
    await veloCi(p, ['ci']);
    expect(existsSync(join(p.dir, 'node_modules/ws-elsewhere'))).toBe(true);
    expect(asObject(describeDir(outside))).toEqual(before);
  });

  for (const args of [['--workspace=ws-a'], ['--workspace=packages/b'], ['--workspace=ws-b', '--include-workspace-root'], ['--no-workspaces']]) {
    it(`npm ci ${args.join(' ')}: the chosen workspaces' tree and scripts`, async () => {
      const { npmP, veloP } = await pair();
      assertNpmOk(await npmP.npm(['ci', ...args]), `npm ci ${args.join(' ')}`);
      const npm = outcome(npmP.dir);
      await veloCi(veloP, ['ci', ...args]);
      expectSame(outcome(veloP.dir), npm);
    });
  }
});
