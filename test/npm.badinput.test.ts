// Bad input to velo npm ci: each case gets a clear error, the previous
// node_modules stays exactly as it was, and the store stays consistent
// (velo verify finds nothing wrong). Real registry on loopback, real npm.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { prepareProject, type PreparedProject } from './support/npmProject.js';
import { startRegistry, type Registry } from './support/registry.js';
import { asObject, describeDir } from './support/treeCompare.js';
import { velo, veloAsync, veloEnv } from './support/runVelo.js';
import { repoRoot, veloBin } from './support/paths.js';
import { buildTarball } from './support/craftedTarballs.js';
import { tempDirs } from './support/tmp.js';

let registry: Registry;
const tmp = tempDirs('velo-npm-bad-');
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  registry = await startRegistry();
}, 300_000);
afterEach(async () => {
  await registry.setFailure(null);
});
afterAll(async () => {
  for (const c of cleanups) await c();
  await registry?.stop();
});

async function project(spec: Parameters<typeof prepareProject>[0]): Promise<PreparedProject> {
  const p = await prepareProject(spec, registry);
  cleanups.push(p.cleanup);
  return p;
}

const env = (p: PreparedProject, home: string): NodeJS.ProcessEnv => ({ ...p.env, VELO_HOME: home });
const nm = (p: PreparedProject): Record<string, unknown> => asObject(describeDir(join(p.dir, 'node_modules')));

/** A project installed once by velo: its node_modules is the previous tree every case must keep. */
async function installed(): Promise<{ p: PreparedProject; home: string }> {
  const p = await project('basic');
  const home = tmp();
  const r = await veloAsync(['npm', 'ci'], env(p, home), p.dir);
  expect(r.code, r.stderr).toBe(0);
  return { p, home };
}

function storeIsSound(home: string): void {
  const r = velo(['verify', '--json'], { VELO_HOME: home });
  expect(r.code, r.stdout).toBe(0);
}

/** Point the project at a dependency the store does not have yet, so the next install must fetch. */
function addDependency(p: PreparedProject, name: string, range = '^1.0.0'): void {
  const pkg = JSON.parse(readFileSync(join(p.dir, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  pkg.dependencies[name] = range;
  writeFileSync(join(p.dir, 'package.json'), JSON.stringify(pkg, null, 2));
  execFileSync('npm', ['install', '--package-lock-only', '--ignore-scripts'], { cwd: p.dir, env: veloEnv(p.env), stdio: 'ignore' });
}

describe('bad input', () => {
  it('a malformed lockfile: the message names the file and the problem', async () => {
    const { p, home } = await installed();
    writeFileSync(join(p.dir, 'package-lock.json'), '{ "lockfileVersion": 3, "packages": { ');
    const before = nm(p);
    const r = await veloAsync(['npm', 'ci'], env(p, home), p.dir);
    expect(r.code).toBe(14);
    expect(r.stderr).toContain(join(p.dir, 'package-lock.json'));
    expect(r.stderr).toMatch(/not valid JSON/);
    expect(nm(p)).toEqual(before);
  });

  it('a lockfile out of sync with package.json: velo npm ci refuses as npm ci does', async () => {
    const { p, home } = await installed();
    const pkg = JSON.parse(readFileSync(join(p.dir, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    pkg.dependencies['velo-fx-devtool'] = '^1.0.0';
    writeFileSync(join(p.dir, 'package.json'), JSON.stringify(pkg));
    const before = nm(p);
    const r = await veloAsync(['npm', 'ci'], env(p, home), p.dir);
    expect(r.code).toBe(14);
    expect(r.stderr).toMatch(/in sync/);
    expect(nm(p)).toEqual(before);
    // velo npm install lets npm resolve first, then installs
    const ok = await veloAsync(['npm', 'install', '--json'], env(p, home), p.dir);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ resolvedLockfile: true });
  });

  it('an integrity mismatch: nothing installed, no key for the bad bytes', async () => {
    const { p, home } = await installed();
    addDependency(p, 'velo-fx-devtool');
    const before = nm(p);
    await registry.setFailure({ mode: 'tamper', on: 'tarball' });
    const r = await veloAsync(['npm', 'ci'], env(p, home), p.dir);
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toMatch(/velo-fx-(devtool|host)@1\.0\.0: the downloaded tarball does not match the lockfile's integrity/);
    expect(nm(p)).toEqual(before);
    storeIsSound(home);
    await registry.setFailure(null);
    const ok = await veloAsync(['npm', 'ci'], env(p, home), p.dir);
    expect(ok.code, ok.stderr).toBe(0);
  });

  for (const evil of ['dotdot', 'absolute', 'symlink', 'hardlink']) {
    it(`a tarball with ${evil === 'dotdot' ? '../ paths' : evil === 'absolute' ? 'an absolute path' : `an escaping ${evil}`} is refused`, async () => {
      const { p, home } = await installed();
      addDependency(p, `velo-fx-evil-${evil}`);
      const before = nm(p);
      const r = await veloAsync(['npm', 'ci'], env(p, home), p.dir);
      expect(r.code, r.stderr).toBe(6);
      expect(r.stderr).toMatch(new RegExp(`velo-fx-evil-${evil}@1\\.0\\.0: the tarball contains .*refusing to install it`));
      expect(nm(p)).toEqual(before);
      storeIsSound(home);
    });
  }

  for (const [mode, code, message] of [
    [{ mode: 'status', status: 404 }, 3, /velo-fx-(devtool|host)@1\.0\.0: not found in the registry \(404\)/],
    [{ mode: 'status', status: 500 }, 12, /velo-fx-(devtool|host)@1\.0\.0: the registry answered 500/],
    [{ mode: 'hang' }, 12, /velo-fx-(devtool|host)@1\.0\.0: cannot download it/],
  ] as const) {
    it(`the registry ${'status' in mode ? `answering ${mode.status}` : 'not answering'}`, async () => {
      const { p, home } = await installed();
      addDependency(p, 'velo-fx-devtool');
      writeFileSync(join(p.dir, '.npmrc'), readFileSync(join(p.dir, '.npmrc'), 'utf8') + 'fetch-timeout=1500\nfetch-retries=0\n');
      const before = nm(p);
      await registry.setFailure({ ...mode, on: 'tarball' });
      const r = await veloAsync(['npm', 'ci'], env(p, home), p.dir);
      expect(r.code, r.stderr).toBe(code);
      expect(r.stderr).toMatch(message);
      expect(nm(p)).toEqual(before);
      storeIsSound(home);
    });
  }

  it('--offline with a package missing from the store names it', async () => {
    const { p, home } = await installed();
    addDependency(p, 'velo-fx-devtool');
    const before = nm(p);
    const r = await veloAsync(['npm', 'ci', '--offline'], { ...env(p, home), NPM_CONFIG_CACHE: join(home, 'empty-npm-cache') }, p.dir);
    expect(r.code, r.stderr).toBe(12);
    expect(r.stderr).toMatch(/velo-fx-(devtool|host)@1\.0\.0 is not in the velo store, and --offline forbids fetching it/);
    expect(nm(p)).toEqual(before);
  });

  it('a failing install script: the error names the package and script, the old tree comes back', async () => {
    const { p, home } = await installed();
    addDependency(p, 'velo-fx-script-fails');
    const before = nm(p);
    const r = await veloAsync(['npm', 'ci'], env(p, home), p.dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/velo-fx-script-fails@1\.0\.0 postinstall script failed \(exit 3\)/);
    expect(nm(p)).toEqual(before);
  });

  it('an optional dependency whose script fails is removed, as npm does, and the install succeeds', async () => {
    const p = await project('scripts-optional-fail');
    const r = await veloAsync(['npm', 'ci'], env(p, tmp()), p.dir);
    expect(r.code, r.stderr).toBe(0);
    expect(Object.keys(nm(p))).not.toContain('velo-fx-script-fails');
    expect(Object.keys(nm(p))).toContain('velo-fx-leaf');
  });

  it('killed while fetching: the previous node_modules is intact and the next run works', async () => {
    const { p, home } = await installed();
    addDependency(p, 'velo-fx-devtool');
    const before = nm(p);
    await registry.setFailure({ mode: 'hang', on: 'tarball' });
    const child = spawn(process.execPath, [veloBin(), 'npm', 'ci'], { cwd: p.dir, env: veloEnv(env(p, home)), stdio: 'ignore' });
    for (let i = 0; i < 200 && (await registry.requestsOfKind('tarball')).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    expect(nm(p)).toEqual(before);
    await registry.setFailure(null);
    const ok = await veloAsync(['npm', 'ci'], env(p, home), p.dir);
    expect(ok.code, ok.stderr).toBe(0);
    expect(Object.keys(nm(p))).toContain('velo-fx-devtool');
    storeIsSound(home);
  });

  it('killed while install scripts run: the next run puts the previous node_modules back', async () => {
    const { p, home } = await installed();
    const script = "require('fs').writeFileSync('started', ''); setTimeout(() => {}, 60000)";
    await registry.publishTarball(
      { name: 'velo-fx-slow-script', version: '1.0.0', scripts: { postinstall: `node -e "${script}"` } },
      buildTarball([
        { path: 'package/package.json', content: JSON.stringify({ name: 'velo-fx-slow-script', version: '1.0.0', scripts: { postinstall: `node -e "${script}"` } }) },
        { path: 'package/index.js', content: 'module.exports = 1;\n' },
      ]),
    );
    addDependency(p, 'velo-fx-slow-script');
    const before = nm(p);
    const child = spawn(process.execPath, [veloBin(), 'npm', 'ci'], { cwd: p.dir, env: veloEnv(env(p, home)), stdio: 'ignore', detached: true });
    const started = join(p.dir, 'node_modules/velo-fx-slow-script/started');
    for (let i = 0; i < 400 && !existsSync(started); i++) await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(started)).toBe(true);
    process.kill(-child.pid!, 'SIGKILL'); // velo and the script it runs
    await new Promise((r) => child.on('close', r));
    const { recoverInterruptedInstall } = (await import(join(repoRoot(), 'dist/src/npm/install.js'))) as typeof import('../src/npm/install.js');
    expect(recoverInterruptedInstall(home, p.dir)).toBe(true);
    expect(nm(p)).toEqual(before);
    expect(recoverInterruptedInstall(home, p.dir)).toBe(false);
  });

  it('two installs in one project at once: the second waits for the first, and both succeed', async () => {
    const { p, home } = await installed();
    // a postinstall that holds the first install until the test lets it go
    const script = "const fs=require('fs');fs.writeFileSync('../../held','');const t=setInterval(()=>{if(fs.existsSync('../../go'))clearInterval(t)},50)";
    const manifest = { name: 'velo-fx-gated-script', version: '1.0.0', scripts: { postinstall: `node -e "${script}"` } };
    await registry.publishTarball(manifest, buildTarball([
      { path: 'package/package.json', content: JSON.stringify(manifest) },
      { path: 'package/index.js', content: 'module.exports = 1;\n' },
    ]));
    addDependency(p, 'velo-fx-gated-script');
    const first = veloAsync(['npm', 'ci'], env(p, home), p.dir);
    for (let i = 0; i < 400 && !existsSync(join(p.dir, 'held')); i++) await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(join(p.dir, 'held'))).toBe(true);
    const second = veloAsync(['npm', 'ci'], env(p, home), p.dir);
    // the second one says it is waiting, and does not finish while the first is held
    await new Promise((r) => setTimeout(r, 1500));
    writeFileSync(join(p.dir, 'go'), '');
    const [a, b] = await Promise.all([first, second]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).toMatch(/waiting for another velo \(pid \d+\) installing in /);
    expect(Object.keys(nm(p))).toContain('velo-fx-gated-script');
    const ls = spawnSync('npm', ['ls', '--all'], { cwd: p.dir, env: veloEnv(p.env), encoding: 'utf8' });
    expect(ls.status, ls.stdout + ls.stderr).toBe(0);
    storeIsSound(home);
  });

  it('the disk filling up: a clear error, the previous node_modules intact', async () => {
    const { p } = await installed();
    // a store on a tiny filesystem of its own
    const small = tmp();
    mkdirSync(join(small, 'mnt'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=600k', 'tmpfs', join(small, 'mnt')]);
    try {
      addDependency(p, 'velo-fx-devtool');
      const before = nm(p);
      const r = await veloAsync(['npm', 'ci'], env(p, join(small, 'mnt', 'store')), p.dir);
      expect(r.code, r.stderr).toBe(11);
      expect(r.stderr).toMatch(/the disk is full \(ENOSPC\)/);
      expect(nm(p)).toEqual(before);
      // the store stays consistent: no partial temporary file is left in it
      expect(readdirSync(join(small, 'mnt', 'store', 'tmp'))).toEqual([]);
    } finally {
      execFileSync('umount', [join(small, 'mnt')]);
    }
    rmSync(join(small, 'mnt'), { recursive: true, force: true });
  });
});
