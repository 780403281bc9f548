// velo run through the real binary: exit codes, signals, stdin, the
// environment, the compile cache in the store, and — against the test
// registry with the real npm — that it installs node_modules first and that
// the second run is the no-op (the same no-op as velo npm ci).
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { velo, veloEnv, type VeloRun } from './support/runVelo.js';
import { veloBin } from './support/paths.js';
import { prepareProject, type PreparedProject } from './support/npmProject.js';
import { startRegistry, type Registry } from './support/registry.js';
import { tempDirs } from './support/tmp.js';

const tmp = tempDirs('velo-run-');

/** velo run with stdin, returning the child to signal. */
function start(args: string[], env: NodeJS.ProcessEnv, cwd: string, input?: Buffer): { child: ReturnType<typeof spawn>; done: Promise<VeloRun & { stdoutBytes: Buffer }> } {
  const child = spawn(process.execPath, [veloBin(), 'run', ...args], { env: veloEnv(env), cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin!.on('error', () => {}); // velo gone early: the assertions on its exit say why
  if (input) child.stdin!.end(input);
  const done = new Promise<VeloRun & { stdoutBytes: Buffer }>((resolve) =>
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString(), stdoutBytes: Buffer.concat(out), stderr })),
  );
  return { child, done };
}

async function waitFor(pred: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('velo run passes the command through', () => {
  const dir = tmp();
  const env = { VELO_HOME: join(dir, 'store') };

  it('passes the exit code through', () => {
    for (const code of [0, 1, 3, 42]) {
      const r = velo(['run', process.execPath, '-e', `process.exit(${code})`], env, dir);
      expect(r.code, r.stderr).toBe(code);
    }
  });

  it('exits 128 + the signal when a signal ended the command', () => {
    expect(velo(['run', process.execPath, '-e', "process.kill(process.pid, 'SIGTERM')"], env, dir).code).toBe(128 + 15);
    expect(velo(['run', process.execPath, '-e', "process.kill(process.pid, 'SIGKILL')"], env, dir).code).toBe(128 + 9);
  });

  for (const [sig, num] of [
    ['SIGTERM', 15],
    ['SIGINT', 2],
    ['SIGHUP', 1],
  ] as const) {
    it(`forwards ${sig} to the command: a handler sees it, an unhandled one ends it with 128 + ${num}`, async () => {
      const handled = start([process.execPath, '-e', `process.on('${sig}', () => { console.log('got ${sig}'); process.exit(7) }); console.log('ready'); setInterval(() => {}, 1000)`], env, dir);
      let said = '';
      handled.child.stdout!.on('data', (d: Buffer) => (said += d.toString()));
      await waitFor(() => said.includes('ready'), 'the command to start');
      handled.child.kill(sig);
      const r = await handled.done;
      expect(r.stdout).toContain(`got ${sig}`);
      expect(r.code).toBe(7);

      const plain = start([process.execPath, '-e', "console.log('ready'); setInterval(() => {}, 1000)"], env, dir);
      let said2 = '';
      plain.child.stdout!.on('data', (d: Buffer) => (said2 += d.toString()));
      await waitFor(() => said2.includes('ready'), 'the command to start');
      plain.child.kill(sig);
      expect((await plain.done).code).toBe(128 + num);
    });
  }

  it('gives the command its stdin and stdout byte for byte', async () => {
    const bytes = Buffer.alloc(300_000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 131) & 0xff;
    const r = await start([process.execPath, '-e', 'process.stdin.pipe(process.stdout)'], env, dir, bytes).done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdoutBytes.equals(bytes)).toBe(true);
  });

  it('says so and exits 127 when the command does not exist', () => {
    const r = velo(['run', 'velo-no-such-command-xyz'], env, dir);
    expect(r.code).toBe(127);
    expect(r.stderr).toContain('velo-no-such-command-xyz: command not found');
  });

  it('needs a command (exit 2) and has --help', () => {
    expect(velo(['run'], env, dir).code).toBe(2);
    const h = velo(['run', '--help'], env, dir);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('Usage: velo run');
  });
});

describe('velo run sets the project\'s environment', () => {
  it('finds node_modules/.bin and the venv\'s bin by name, sets VIRTUAL_ENV and the compile cache, from a subdirectory', () => {
    const root = tmp();
    const home = join(root, 'store');
    writeFileSync(join(root, 'pyproject.toml'), '[project]\nname = "x"\n');
    mkdirSync(join(root, 'node_modules', '.bin'), { recursive: true });
    mkdirSync(join(root, '.venv', 'bin'), { recursive: true });
    mkdirSync(join(root, 'src', 'deep'), { recursive: true });
    writeFileSync(join(root, 'node_modules', '.bin', 'hello-bin'), '#!/bin/sh\necho "hello from node_modules/.bin $*"\n');
    writeFileSync(join(root, '.venv', 'bin', 'hello-venv'), '#!/bin/sh\necho "hello from the venv, VIRTUAL_ENV=$VIRTUAL_ENV"\n');
    chmodSync(join(root, 'node_modules', '.bin', 'hello-bin'), 0o755);
    chmodSync(join(root, '.venv', 'bin', 'hello-venv'), 0o755);
    const cwd = join(root, 'src', 'deep');
    // --no-install: this checks the environment only (the fake .venv is not one uv could sync)
    const a = velo(['run', '--no-install', 'hello-bin', 'x', 'y'], { VELO_HOME: home }, cwd);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toBe('hello from node_modules/.bin x y\n');
    const b = velo(['run', '--no-install', 'hello-venv'], { VELO_HOME: home }, cwd);
    expect(b.stdout).toBe(`hello from the venv, VIRTUAL_ENV=${join(root, '.venv')}\n`);
    const c = velo(['run', '--no-install', process.execPath, '-e', 'console.log(JSON.stringify([process.env.PATH, process.env.NODE_COMPILE_CACHE]))'], { VELO_HOME: home }, cwd);
    const [path, cache] = JSON.parse(c.stdout) as [string, string];
    expect(path.split(delimiter).slice(0, 2)).toEqual([join(root, 'node_modules', '.bin'), join(root, '.venv', 'bin')]);
    expect(cache).toBe(join(home, 'compile-cache'));
    expect(c.stderr).toBe('');
  });
});

describe('velo run with npm (test registry, real npm)', () => {
  let registry: Registry;
  let p: PreparedProject;
  let home: string;
  const cleanups: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    registry = await startRegistry();
    p = await prepareProject('basic', registry);
    cleanups.push(p.cleanup);
    home = join(tmp(), 'store');
  }, 300_000);
  afterAll(async () => {
    for (const c of cleanups) await c();
    await registry?.stop();
  });

  const program = "const h = require('@velo-fx/hello'); console.log(h('run')); console.log(Object.keys(process.env).filter((k) => /^npm_/i.test(k)).sort().join(','))";

  it('installs node_modules first, runs the command with its bins, and the second run is a no-op', async () => {
    const env = { ...p.env, VELO_HOME: home };
    const first = velo(['run', 'node', '-e', program], env, p.dir);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/velo: npm: \d+ packages \(0 from store, \d+ fetched\)/);
    const [line, npmVars] = first.stdout.trim().split('\n');
    expect(line).toBe('hello run (via velo-fx-leaf)');
    // npm's configuration, loaded for the install, does not leak into the command's environment
    expect(npmVars).toBe(Object.keys(p.env).filter((k) => /^npm_/i.test(k)).sort().join(','));

    const nm = statSync(join(p.dir, 'node_modules'), { bigint: true });
    const second = velo(['run', 'hello', 'again'], env, p.dir);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toBe('hello again (via velo-fx-leaf)\n');
    expect(second.stderr).toBe(''); // nothing to install: not a word
    const nm2 = statSync(join(p.dir, 'node_modules'), { bigint: true });
    expect([nm2.ino, nm2.mtimeNs]).toEqual([nm.ino, nm.mtimeNs]);

    // the same no-op as velo npm ci's: each sees the other's install as current
    const ci = velo(['npm', 'ci'], env, p.dir);
    expect(ci.code, ci.stderr).toBe(0);
    expect(ci.stdout).toContain('up to date');
  });

  it('does not run the command when node_modules cannot be brought up to date (lockfile out of sync: exit 14, as velo npm ci)', () => {
    const env = { ...p.env, VELO_HOME: home };
    const pkgPath = join(p.dir, 'package.json');
    const before = readFileSync(pkgPath, 'utf8');
    const pkg = JSON.parse(before) as { dependencies: Record<string, string> };
    writeFileSync(pkgPath, JSON.stringify({ ...pkg, dependencies: { ...pkg.dependencies, 'velo-fx-shared': '^2.0.0' } }, null, 2));
    try {
      const marker = join(p.dir, 'ran');
      const r = velo(['run', 'node', '-e', `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`], env, p.dir);
      expect(r.code, r.stderr).toBe(14);
      expect(r.stderr).toMatch(/velo: .*(sync|lock)/i);
      expect(existsSync(marker)).toBe(false);
    } finally {
      writeFileSync(pkgPath, before);
    }
    expect(velo(['run', 'node', '-e', '0'], env, p.dir).code).toBe(0);
  });

  it('keeps the compile cache in the store, and the program computes the same with it', () => {
    const env = { ...p.env, VELO_HOME: home };
    const calc = "const h = require('@velo-fx/hello'); let x = 0; for (let i = 0; i < 1e5; i++) x = (x * 31 + i) % 1000003; console.log(h(String(x)))";
    const viaVelo = velo(['run', 'node', '-e', calc], env, p.dir);
    expect(viaVelo.code, viaVelo.stderr).toBe(0);
    const cacheRoot = join(home, 'compile-cache');
    const tagged = readdirSync(cacheRoot).filter((d) => d.startsWith(`v${process.versions.node}-`));
    expect(tagged.length).toBeGreaterThan(0);
    const entries = tagged.flatMap((d) => readdirSync(join(cacheRoot, d)));
    expect(entries.length).toBeGreaterThan(0); // node_modules' modules were compiled into it
    const plain = velo(['run', '--no-install', 'node', '-e', calc], { ...env, NODE_DISABLE_COMPILE_CACHE: '1' }, p.dir);
    expect(plain.stdout).toBe(viaVelo.stdout);
  });
});
