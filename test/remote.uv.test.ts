// velo uv sync through a shared store on S3 (SeaweedFS weed mini on loopback):
// distributions one machine stored are taken by another machine's empty store
// from the remote, with no wheel downloaded from the index; a dead remote costs
// one warning.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { copyProject, runPython, runUvCli, veloUv, type PyIndex } from '../fixtures/uv/harness.js';
import { tempDirs } from './support/tmp.js';
import { startUvIndexSandbox, stopUvIndexSandbox, uvSandboxEnv } from './support/uvIndexSandbox.js';
import { deadEndpoint, useS3Server } from './support/s3Server.js';

const tmp = tempDirs('velo-remote-uv-');
let root: string;
let python: string;
let index: PyIndex;
const s3 = useS3Server();

beforeAll(async () => {
  root = tmp();
  ({ python, index } = await startUvIndexSandbox(root));
}, 180_000);
afterAll(async () => {
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
