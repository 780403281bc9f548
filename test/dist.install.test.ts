// velo installed the way a user installs it: the tarballs scripts/pack.mjs
// writes (the CLI bundle, and the platform packages with the prebuilt addon
// and velo-mountd) published to the loopback registry, `npm i -g velo-rift`
// into a temporary prefix with no C compiler on PATH, then
// `velo npm ci --projection mount` on a fixture project: mounted, read,
// unmounted. Packed once here, into a temp dir (zig cc for every Linux
// platform when scripts/install-zig.sh has run, as scripts/test.sh does;
// else gcc for this machine's platform only).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unmountAll } from '../src/mount/mount.js';
import { Store } from '../src/store/store.js';
import { killLeftoverServers } from './support/mountSandbox.js';
import { npmCliPath, runNpm, type PreparedProject } from './support/npmProject.js';
import type { PackageManifest } from './support/registry.js';
import { useRegistryProjects } from './support/registryProjects.js';
import { repoRoot } from './support/paths.js';

const fx = useRegistryProjects('velo-dist-');
const ZIG = join(repoRoot(), '.tools', 'zig', 'ziglang', 'zig');
const PLATFORM = `linux-${process.arch}-gnu`;

/** The manifest inside a tarball, as npm publish would send it. */
function manifestOf(tgz: string): PackageManifest {
  return JSON.parse(execFileSync('tar', ['-xzOf', tgz, 'package/package.json'], { encoding: 'utf8' })) as PackageManifest;
}

interface Installed {
  prefix: string;
  velo: string;
  /** a PATH with node and npm and nothing else */
  path: string;
  packed: string[];
}

let installed: Installed;
let project: PreparedProject;
let home: string;

beforeAll(async () => {
  const work = fx.tmp();
  const out = join(work, 'pack');
  const packArgs = existsSync(ZIG) ? ['--zig', ZIG] : ['--host'];
  execFileSync(process.execPath, [join(repoRoot(), 'scripts', 'pack.mjs'), ...packArgs, '--out', out], { stdio: ['ignore', 'ignore', 'inherit'] });
  const packed = readdirSync(out).filter((f) => f.endsWith('.tgz'));

  // velo-rift's one runtime dependency, and its prebuilt for this machine, packed from node_modules
  const deps = join(work, 'deps');
  mkdirSync(deps);
  for (const dir of ['@napi-rs/blake-hash', `@napi-rs/blake-hash-linux-${process.arch}-gnu`]) {
    const r = await runNpm(['pack', '--ignore-scripts', '--pack-destination', deps, join(repoRoot(), 'node_modules', dir)], { cwd: work, env: process.env });
    expect(r.code, r.stderr).toBe(0);
  }
  for (const tgz of [...readdirSync(deps).map((f) => join(deps, f)), ...packed.map((f) => join(out, f))]) {
    await fx.registry.publishTarball(manifestOf(tgz), readFileSync(tgz));
  }

  // a PATH a machine without build tools has: node and npm only
  const bin = join(work, 'bin');
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, 'node'));
  symlinkSync(npmCliPath(), join(bin, 'npm'));
  const prefix = join(work, 'prefix');
  const npmrc = join(work, 'npmrc');
  execFileSync('sh', ['-c', `printf 'registry=%s\\n%s\\naudit=false\\nfund=false\\nupdate-notifier=false\\n' "$0" "$1" > "$2"`, fx.registry.url, fx.registry.authLine, npmrc]);
  const env = { HOME: work, PATH: bin, NPM_CONFIG_USERCONFIG: npmrc, NPM_CONFIG_CACHE: join(work, 'npm-cache') };
  const r = spawnSync(process.execPath, [npmCliPath(), 'i', '-g', '--prefix', prefix, 'velo-rift'], { env, encoding: 'utf8' });
  expect(r.status, r.stdout + r.stderr).toBe(0);
  installed = { prefix, velo: join(prefix, 'bin', 'velo'), path: bin, packed };

  project = await fx.project('basic');
  home = fx.tmp();
}, 600_000);

afterAll(async () => {
  if (!home) return;
  await unmountAll(Store.open(home)).catch(() => undefined);
  killLeftoverServers(home);
});

describe('npm i -g velo-rift', () => {
  it('installs the CLI and the prebuilt for this machine, with no compiler to build anything', () => {
    for (const cc of ['gcc', 'cc', 'make', 'zig']) {
      expect(spawnSync(cc, ['--version'], { env: { PATH: installed.path } }).error, cc).toMatchObject({ code: 'ENOENT' });
    }
    const modules = join(installed.prefix, 'lib', 'node_modules');
    expect(existsSync(join(modules, 'velo-rift', 'dist', 'bundle', 'start.cjs'))).toBe(true);
    // the bin npm linked is the bundle's shell script (cli/velo.sh), which finds the launcher below
    expect(readlinkSync(installed.velo)).toBe('../lib/node_modules/velo-rift/dist/bundle/velo');
    expect(readFileSync(installed.velo, 'utf8')).toMatch(/^#!\/bin\/sh\n/);
    // only what runs: no sources, no native build tree
    expect(readdirSync(join(modules, 'velo-rift')).sort()).toEqual(['README.md', 'dist', 'node_modules', 'package.json']);
    const prebuilt = join(modules, 'velo-rift', 'node_modules', '@velo-rift', PLATFORM);
    expect(readdirSync(prebuilt).sort()).toEqual(['README.md', 'package.json', 'velo-launch', 'velo-mountd', 'velo_native.node']);
    expect(statSync(join(prebuilt, 'velo-launch')).mode & 0o111).toBe(0o111);
    // npm chose by os/cpu/libc: no other platform's package was installed (they were published when zig built them)
    const others = installed.packed.filter((t) => /^velo-rift-linux-/.test(t) && !t.startsWith(`velo-rift-${PLATFORM}-`));
    if (existsSync(ZIG)) expect(others.length).toBeGreaterThanOrEqual(3);
    expect(readdirSync(join(prebuilt, '..'))).toEqual([PLATFORM]);
  });

  it('velo --version and velo npm --help run from the global bin', () => {
    const v = spawnSync(installed.velo, ['--version'], { env: { PATH: installed.path }, encoding: 'utf8' });
    expect(v.status, v.stderr).toBe(0);
    expect(v.stdout.trim()).toBe(JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')).version);
    const h = spawnSync(installed.velo, ['npm', '--help'], { env: { PATH: installed.path }, encoding: 'utf8' });
    expect(h.status, h.stderr).toBe(0);
    expect(h.stdout).toContain('Usage: velo npm <command>');
    // `velo uv …` goes through the prebuilt launcher, which hands what it does not answer to node
    const uv = spawnSync(installed.velo, ['uv', 'sync', '--help'], { env: { PATH: installed.path }, encoding: 'utf8' });
    expect(uv.status, uv.stderr).toBe(0);
    expect(uv.stdout).toContain('Usage: velo uv sync');
  });

  it('velo npm ci --projection mount mounts node_modules from the prebuilt velo-mountd, reads through it, and unmounts', () => {
    const env = { ...project.env, PATH: installed.path, VELO_HOME: home };
    const r = spawnSync(installed.velo, ['npm', 'ci', '--projection', 'mount', '--json'], { cwd: project.dir, env, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { projection: string; projectionNote?: string };
    expect(summary.projectionNote).toBeUndefined();
    expect(summary.projection).toBe('mount');
    const nodeModules = join(project.dir, 'node_modules');
    expect(readFileSync('/proc/self/mounts', 'utf8')).toContain(` ${nodeModules} `);
    // the server is the packaged one
    const servers = readdirSync(join(home, 'mounts')).map((id) => readFileSync(`/proc/${(JSON.parse(readFileSync(join(home, 'mounts', id, 'server.json'), 'utf8')) as { pid: number }).pid}/cmdline`, 'utf8').split('\0')[0]);
    expect(servers.length).toBeGreaterThan(0);
    for (const s of servers) expect(s).toBe(join(installed.prefix, 'lib', 'node_modules', 'velo-rift', 'node_modules', '@velo-rift', PLATFORM, 'velo-mountd'));
    // a package read through the mount: node requires it
    const read = spawnSync(process.execPath, ['-e', 'console.log(require("@velo-fx/hello/package.json").name)'], { cwd: project.dir, encoding: 'utf8' });
    expect(read.stdout.trim(), read.stderr).toBe('@velo-fx/hello');
    const u = spawnSync(installed.velo, ['umount', nodeModules], { cwd: project.dir, env, encoding: 'utf8' });
    expect(u.status, u.stdout + u.stderr).toBe(0);
    expect(readFileSync('/proc/self/mounts', 'utf8')).not.toContain(` ${nodeModules} `);
  });

  it('without libfuse3 on the machine, velo still installs: one note, and node_modules is linked', () => {
    // libfuse3.so.3 made unloadable for one process tree: an empty file bound over it in a private mount namespace
    const lib = execFileSync('sh', ['-c', 'readlink -f "$(ldconfig -p | sed -n "s/.*libfuse3.so.3 .*=> //p" | head -n1)"'], { encoding: 'utf8' }).trim();
    expect(lib).toMatch(/libfuse3\.so\.3/);
    const env = { ...project.env, PATH: installed.path, VELO_HOME: fx.tmp() };
    const script = `mount --bind /dev/null '${lib}' && exec '${installed.velo}' npm ci --projection mount --json`;
    const r = spawnSync('/usr/bin/unshare', ['--mount', '--propagation', 'private', '/bin/sh', '-c', script], { cwd: project.dir, env: { ...env, PATH: `${installed.path}:/usr/bin:/bin` }, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { projection: string; projectionNote?: string };
    expect(summary.projection).toBe('link');
    expect(summary.projectionNote).toMatch(/libfuse3 is not installed/);
    expect(readFileSync(join(project.dir, 'node_modules', '@velo-fx', 'hello', 'package.json'), 'utf8')).toContain('@velo-fx/hello');
  });
});
