// Bad input to the store's own commands: a clear message naming the problem,
// a meaningful exit code, and nothing lost or left half-made.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { asObject, describeDir } from './support/treeCompare.js';
import { tempDirs } from './support/tmp.js';
import { velo } from './support/runVelo.js';
import { repoRoot, veloBin } from './support/paths.js';

const tmp = tempDirs();

function sourceWith(extra: (dir: string) => void | Promise<void>): Promise<string> {
  const dir = join(tmp(), 'src');
  mkdirSync(join(dir, 'a/b'), { recursive: true });
  writeFileSync(join(dir, 'a/ok.js'), 'ok\n');
  return Promise.resolve(extra(dir)).then(() => dir);
}

function tmpIsEmpty(home: string): void {
  expect(readdirSync(join(home, 'tmp'))).toEqual([]);
}

describe('ingest refuses what a tree cannot hold, by name', () => {
  it('a socket', async () => {
    const server = createServer();
    const src = await sourceWith((d) => new Promise<void>((r) => server.listen(join(d, 'a/b/sock'), r)));
    try {
      const home = join(tmp(), 'store');
      const r = velo(['store', 'ingest', src], { VELO_HOME: home });
      expect(r.code).toBe(4);
      expect(r.stderr).toContain(`${join(src, 'a/b/sock')}: it is a socket`);
      tmpIsEmpty(home);
    } finally {
      server.close();
    }
  });

  it('a FIFO', async () => {
    const src = await sourceWith((d) => void execFileSync('mkfifo', [join(d, 'a/fifo')]));
    const home = join(tmp(), 'store');
    const r = velo(['store', 'ingest', src], { VELO_HOME: home });
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(`${join(src, 'a/fifo')}: it is a FIFO`);
    tmpIsEmpty(home);
  });

  it('a device', async () => {
    const src = await sourceWith((d) => void execFileSync('mknod', [join(d, 'null-dev'), 'c', '1', '3']));
    const r = velo(['store', 'ingest', src], { VELO_HOME: join(tmp(), 'store') });
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(`${join(src, 'null-dev')}: it is a character device`);
  });

  it('an unreadable file (as an unprivileged user)', async () => {
    const base = mkdtempSync('/tmp/velo-unreadable-');
    try {
      chmodSync(base, 0o755);
      const src = join(base, 'src');
      mkdirSync(src);
      writeFileSync(join(src, 'secret'), 'no\n');
      chmodSync(join(src, 'secret'), 0o000);
      const home = join(base, 'store');
      mkdirSync(home);
      const nobody = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());
      chownSync(home, nobody, nobody);
      // the checkout (and the Node that setup put in it) may sit under a directory only root can
      // enter (mktemp -d is 0700): nobody runs them from a bind mount of it inside base
      const codeDir = join(base, 'velo');
      mkdirSync(codeDir);
      execFileSync('mount', ['--bind', repoRoot(), codeDir]);
      const inCheckout = (path: string): string => (path.startsWith(repoRoot() + '/') ? join(codeDir, relative(repoRoot(), path)) : path);
      let out = '';
      let code = 0;
      try {
        execFileSync('runuser', ['-u', 'nobody', '--', inCheckout(process.execPath), inCheckout(veloBin()), 'store', 'ingest', src], {
          env: { PATH: process.env.PATH, VELO_HOME: home, HOME: base },
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      } catch (e) {
        const err = e as { status: number; stderr: string };
        code = err.status;
        out = err.stderr;
      }
      expect(code).toBe(10);
      expect(out).toMatch(/permission denied/i);
      expect(out).toContain(join(src, 'secret'));
    } finally {
      // never delete base while the checkout is still mounted in it
      spawnSync('umount', [join(base, 'velo')], { stdio: 'ignore' });
      if (readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${join(base, 'velo')} `)) throw new Error(`${join(base, 'velo')} is still mounted`);
      rmSync(base, { recursive: true, force: true });
    }
  });
});

describe('materialize', () => {
  it('an unknown tree digest, and something that is not a digest', () => {
    const home = join(tmp(), 'store');
    const unknown = velo(['store', 'materialize', 'ab'.repeat(32), join(tmp(), 'dest')], { VELO_HOME: home });
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain(`unknown tree ${'ab'.repeat(32)}`);
    const bad = velo(['store', 'ls', 'not-a-digest'], { VELO_HOME: home });
    expect(bad.code).toBe(4);
    expect(bad.stderr).toMatch(/not a tree digest/);
  });

  it('a destination on another filesystem: hardlinks fall back to copies per file, auto picks copy', async () => {
    const src = await sourceWith((d) => writeFileSync(join(d, 'a/b/deep.txt'), 'deep\n'));
    const home = join(tmp(), 'store');
    const tree = velo(['store', 'ingest', src], { VELO_HOME: home }).stdout.trim();
    const shm = mkdtempSync('/dev/shm/velo-test-');
    try {
      const hard = velo(['store', 'materialize', tree, join(shm, 'hard'), '--method', 'hardlink', '--json'], { VELO_HOME: home });
      expect(hard.code, hard.stderr).toBe(0);
      const h = JSON.parse(hard.stdout) as { files: number; linked: number; fallbacks: number; copied: number };
      expect(h).toMatchObject({ files: 2, linked: 0, fallbacks: 2, copied: 2 });
      const auto = velo(['store', 'materialize', tree, join(shm, 'auto'), '--json'], { VELO_HOME: home });
      expect(JSON.parse(auto.stdout)).toMatchObject({ method: 'copy', files: 2 });
      expect(asObject(describeDir(join(shm, 'hard')))).toEqual(asObject(describeDir(src)));
      expect(asObject(describeDir(join(shm, 'auto')))).toEqual(asObject(describeDir(src)));
    } finally {
      rmSync(shm, { recursive: true, force: true });
    }
  });

  it('every command answers --help', () => {
    for (const cmd of [['store', '--help'], ['store', 'ingest', '--help'], ['store', 'materialize', '--help'], ['store', 'ls', '--help'], ['status', '--help'], ['verify', '--help'], ['gc', '--help'], ['npm', '--help'], ['cargo', '--help'], ['--help']]) {
      const r = velo(cmd, {});
      expect(r.code, cmd.join(' ')).toBe(0);
      expect(r.stdout, cmd.join(' ')).toMatch(/Usage:/);
    }
  });
});
