// velo uv sync through a shared store on S3 (SeaweedFS weed mini on loopback):
// distributions one machine stored are taken by another machine's empty store
// from the remote, with no wheel downloaded from the index; a dead remote costs
// one warning; with --projection mount the environment is mounted while its
// files are still in the remote, each fetched when python first opens it.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { copyProject, runPython, runUvCli, veloUv, type PyIndex } from '../fixtures/uv/harness.js';
import { tempDirs } from './support/tmp.js';
import { velo } from './support/runVelo.js';
import { startUvIndexSandbox, stopUvIndexSandbox, uvSandboxEnv } from './support/uvIndexSandbox.js';
import { deadEndpoint, useS3Server } from './support/s3Server.js';
import { fuseUnavailableReason, listMounts, unmountProjection } from '../src/mount/mount.js';
import { Store } from '../src/store/store.js';
import { readTree } from '../src/store/trees.js';

const tmp = tempDirs('velo-remote-uv-');
let root: string;
let python: string;
let index: PyIndex;
const s3 = useS3Server();
const SITE = 'lib/python3.11/site-packages';
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  root = tmp();
  ({ python, index } = await startUvIndexSandbox(root));
}, 180_000);
const mountHomes: string[] = [];
afterAll(async () => {
  // every mount this file made goes before its directories are deleted
  for (const home of mountHomes) {
    if (!existsSync(join(home, 'store.json'))) continue;
    const store = Store.open(home);
    try {
      for (const m of listMounts(store)) await unmountProjection(m.dest, { store }).catch(() => undefined);
    } finally {
      store.close();
    }
  }
  await stopUvIndexSandbox(index, root);
});

function sync(project: string, home: string, cache: string, extra: NodeJS.ProcessEnv, args: string[] = []) {
  const env = { ...uvSandboxEnv({ root, python, veloHome: home, index }, cache), ...extra };
  const r = veloUv(['sync', '--json', '--locked', ...args], env, project);
  expect(r.code, r.stderr + r.stdout).toBe(0);
  return { summary: JSON.parse(r.stdout) as Record<string, any>, stderr: r.stderr, env };
}

describe('velo uv sync with a remote', () => {
  test('a second machine takes every distribution from the remote: no wheel downloaded', async () => {
    const remote = { ...s3.env('rw'), VELO_REMOTE: `s3://${s3.bucket}/uv1` };
    const one = copyProject('app-two', join(root, 'm1'));
    expect(runUvCli(['lock'], uvSandboxEnv({ root, python, veloHome: join(root, 'h1'), index }, 'lock'), one).code).toBe(0);
    const first = sync(one, join(root, 'h1'), 'c1', remote);
    expect(first.summary.remote).toMatchObject({ published: first.summary.distributions, warnings: [] });

    const two = copyProject('app-two', join(root, 'm2'));
    expect(runUvCli(['lock'], uvSandboxEnv({ root, python, veloHome: join(root, 'h2'), index }, 'lock'), two).code).toBe(0);
    await index.clear();
    const second = sync(two, join(root, 'h2'), 'c2-empty', remote);
    expect(second.summary).toMatchObject({ fromStore: second.summary.distributions, ingested: 0 });
    expect(second.summary.remote).toMatchObject({ fromRemote: second.summary.distributions, warnings: [] });
    expect(await index.downloads()).toEqual([]);
    const imp = runPython(join(two, '.venv', 'bin', 'python'), 'import velo_greet, velo_data, velo_speedups; print(velo_speedups.add_all(4, 5))', second.env, two);
    expect(imp.stdout.trim()).toBe('9');
  });

  test('bytecode goes with the distributions: a machine that compiled publishes it, a fresh machine compiles nothing and python writes nothing', async () => {
    const remote = { ...s3.env('rw'), VELO_REMOTE: `s3://${s3.bucket}/uv6` };
    const one = copyProject('app-two', join(root, 'm8'));
    expect(runUvCli(['lock'], uvSandboxEnv({ root, python, veloHome: join(root, 'h8'), index }, 'lock'), one).code).toBe(0);
    const first = sync(one, join(root, 'h8'), 'c8', remote, ['--compile-bytecode']);
    expect(first.summary.bytecode.compiled).toBeGreaterThan(0);
    // a key per distribution and one per distribution's bytecode
    expect(await s3.list('uv6/keys/')).toHaveLength(2 * first.summary.distributions);
    expect(first.summary.remote.published).toBe(2 * first.summary.distributions);

    const two = copyProject('app-two', join(root, 'm9'));
    expect(runUvCli(['lock'], uvSandboxEnv({ root, python, veloHome: join(root, 'h9'), index }, 'lock'), two).code).toBe(0);
    await index.clear();
    const second = sync(two, join(root, 'h9'), 'c9-empty', { ...remote, VELO_REMOTE_MODE: 'read' });
    expect(second.summary).toMatchObject({ fromStore: second.summary.distributions, ingested: 0, bytecode: { compiled: 0 } });
    expect(await index.downloads()).toEqual([]);
    const pyc = join(two, '.venv', SITE, 'velo_greet', '__pycache__', 'cli.cpython-311.pyc');
    expect(sha(readFileSync(pyc))).toBe(sha(readFileSync(join(one, '.venv', SITE, 'velo_greet', '__pycache__', 'cli.cpython-311.pyc'))));
    const v = spawnSync(join(two, '.venv', 'bin', 'python'), ['-v', '-c', 'import velo_greet.cli, velo_data'], { encoding: 'utf8', env: second.env, cwd: two });
    expect(v.status, v.stderr).toBe(0);
    expect(v.stderr).toContain(`# code object from '${pyc}'`);
    expect(v.stderr).not.toMatch(/# wrote /);
  });

  test('a remote that is down: uv installs as without one, one warning', async () => {
    const three = copyProject('app-two', join(root, 'm3'));
    expect(runUvCli(['lock'], uvSandboxEnv({ root, python, veloHome: join(root, 'h3'), index }, 'lock'), three).code).toBe(0);
    const r = sync(three, join(root, 'h3'), 'c3', { ...s3.env('rw'), VELO_REMOTE: `s3://${s3.bucket}/uv2`, AWS_ENDPOINT_URL: await deadEndpoint() });
    expect(r.summary).toMatchObject({ fromStore: 0 });
    expect(r.stderr.split('\n').filter((l) => l.startsWith('velo: warning:'))).toHaveLength(1);
    expect(r.summary.remote.warnings[0]).toMatch(/not used: .*ECONNREFUSED/);
  });

  test('--remote URL and --no-remote choose the remote for one run', async () => {
    const four = copyProject('app-two', join(root, 'm4'));
    expect(runUvCli(['lock'], uvSandboxEnv({ root, python, veloHome: join(root, 'h4'), index }, 'lock'), four).code).toBe(0);
    // --no-remote wins over VELO_REMOTE: nothing written
    const off = sync(four, join(root, 'h4'), 'c4', { ...s3.env('rw'), VELO_REMOTE: `s3://${s3.bucket}/uv3` }, ['--no-remote']);
    expect(off.summary.remote).toBeUndefined();
    expect(await s3.list('uv3/')).toEqual([]);
    // --remote with no VELO_REMOTE: published there
    const five = copyProject('app-two', join(root, 'm5'));
    expect(runUvCli(['lock'], uvSandboxEnv({ root, python, veloHome: join(root, 'h5'), index }, 'lock'), five).code).toBe(0);
    const on = sync(five, join(root, 'h5'), 'c5', s3.env('rw'), [`--remote=s3://${s3.bucket}/uv4`]);
    expect(on.summary.remote).toMatchObject({ url: `s3://${s3.bucket}/uv4/`, warnings: [] });
    expect(on.summary.remote.published).toBeGreaterThan(0);
    expect((await s3.list('uv4/keys/')).length).toBe(on.summary.remote.published);
  });
});


describe.skipIf(fuseUnavailableReason() !== undefined)('velo uv sync --projection mount with a remote', () => {
  test('a second machine mounts the environment while its files are still in the remote; python fetches what it opens', async () => {
    const remote = { ...s3.env('rw'), VELO_REMOTE: `s3://${s3.bucket}/uv5` };
    const one = copyProject('app-two', join(root, 'm6'));
    expect(runUvCli(['lock'], uvSandboxEnv({ root, python, veloHome: join(root, 'h6'), index }, 'lock'), one).code).toBe(0);
    // compiled: the remote gets each distribution's bytecode beside it
    const first = sync(one, join(root, 'h6'), 'c6', remote, ['--compile-bytecode']);
    expect(first.summary.remote).toMatchObject({ published: 2 * first.summary.distributions, warnings: [] });

    const two = copyProject('app-two', join(root, 'm7'));
    const home = join(root, 'h7');
    mountHomes.push(home);
    expect(runUvCli(['lock'], uvSandboxEnv({ root, python, veloHome: home, index }, 'lock'), two).code).toBe(0);
    await index.clear();
    const second = sync(two, home, 'c7-empty', { ...remote, VELO_REMOTE_MODE: 'read' }, ['--projection', 'mount']);
    expect(second.summary).toMatchObject({ projection: 'mount', engine: 'fuse', fromStore: second.summary.distributions, ingested: 0 });
    // keys: each distribution's and its bytecode's
    expect(second.summary.remote).toMatchObject({ fromRemote: 2 * second.summary.distributions, warnings: [] });
    expect(second.summary.remote.lazyObjects).toBeGreaterThan(0);
    // nothing compiled up front: that would read every module from the remote
    expect(second.summary.bytecode).toMatchObject({ compiled: 0 });
    expect(await index.downloads()).toEqual([]);

    const venv = join(two, '.venv');
    const store = Store.open(home);
    try {
      const entries = readTree(store, second.summary.tree as string).entries;
      const inStore = (rel: string): boolean => {
        const e = entries.find((x) => x.path === rel);
        if (!e) throw new Error(`${rel} is not in the environment's tree`);
        return existsSync(store.objectPath(e.digest, e.exec));
      };
      const greet = `${SITE}/velo_greet/__init__.py`;
      const greetPyc = `${SITE}/velo_greet/__pycache__/cli.cpython-311.pyc`;
      const data = `${SITE}/velo_data/__init__.py`;
      const notes = 'share/velo-data/notes.txt';
      expect([inStore(greet), inStore(greetPyc), inStore(data), inStore(notes)]).toEqual([false, false, false, false]);

      const imp = runPython(join(venv, 'bin', 'python'), 'import velo_greet, velo_speedups; print(velo_speedups.add_all(4, 5))', second.env, two);
      expect(imp.code, imp.stderr).toBe(0);
      expect(imp.stdout.trim()).toBe('9');
      // what python opened is in the store now, as the first machine has it; a package it did not open is still only in the remote
      expect(inStore(greet)).toBe(true);
      expect(sha(readFileSync(join(venv, greet)))).toBe(sha(readFileSync(join(one, '.venv', greet))));
      expect([inStore(data), inStore(notes)]).toEqual([false, false]);
      expect(readFileSync(join(venv, notes), 'utf8')).toBe(readFileSync(join(one, '.venv', notes), 'utf8'));
      expect(inStore(notes)).toBe(true);
      // the bytecode came from the remote too, on first open: python compiled nothing and wrote nothing
      const v = spawnSync(join(venv, 'bin', 'python'), ['-v', '-c', 'import velo_greet.cli'], { encoding: 'utf8', env: second.env, cwd: two });
      expect(v.status, v.stderr).toBe(0);
      expect(v.stderr).toContain(`# code object from '${join(venv, greetPyc)}'`);
      expect(v.stderr).not.toMatch(/# wrote /);
      expect(inStore(greetPyc)).toBe(true);
    } finally {
      store.close();
    }

    // uv accepts the mounted environment as in sync; velo's next sync is a no-op
    const uvEnv = uvSandboxEnv({ root, python, veloHome: home, index }, 'c7-empty');
    const again = runUvCli(['sync', '--locked'], uvEnv, two);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toMatch(/Installed|Uninstalled|Built|Prepared/);
    expect(sync(two, home, 'c7-empty', { ...remote, VELO_REMOTE_MODE: 'read' }, ['--projection', 'mount']).summary).toMatchObject({ noop: true });
    // the store is consistent: the objects still in the remote are expected, not damage
    const verify = velo(['verify', '--json'], { ...uvEnv, VELO_HOME: home });
    expect(verify.code, verify.stderr + verify.stdout).toBe(0);

    // linked after all: every object comes from the remote now, none from the index
    const linked = sync(two, home, 'c7-empty', { ...remote, VELO_REMOTE_MODE: 'read' }, ['--projection', 'link']);
    expect(linked.summary).toMatchObject({ projection: 'link', ingested: 0 });
    expect(await index.downloads()).toEqual([]);
    const imp = runPython(join(venv, 'bin', 'python'), 'import velo_data.tests.test_table; print(open(velo_data.__path__[0] + "/tests/test_table.py").read() == open("' + join(one, '.venv', SITE, 'velo_data/tests/test_table.py') + '").read())', linked.env, two);
    expect(imp.code, imp.stderr).toBe(0);
    expect(imp.stdout.trim()).toBe('True');
  });
});
