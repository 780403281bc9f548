// velo cargo through a shared store on S3 (SeaweedFS weed mini on loopback):
// a machine with an empty store restores the target dir another machine
// published, and cargo finds every unit fresh; a remote that refuses costs
// one warning and a normal build.
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { artifacts, cargoSandbox, veloCargo, type CargoSandbox } from '../fixtures/cargo/harness.js';
import { ALL_UNITS, expectSameDemoBinary, units } from './support/cargoChecks.js';
import { useS3Server } from './support/s3Server.js';

describe('velo cargo with a remote', () => {
  let sb: CargoSandbox;
  const s3 = useS3Server();
  beforeAll(() => {
    sb = cargoSandbox('velo-remote-cargo-');
  });
  afterAll(() => sb?.remove());

  test('a fresh store restores the target another machine published; cargo compiles nothing', () => {
    const remote = { ...s3.env('rw'), VELO_REMOTE: `s3://${s3.bucket}/cargo1` };
    const a = sb.clone('a');
    const first = veloCargo(['build'], a, { ...sb.env, ...remote, VELO_HOME: join(sb.root, 'home-a') });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/Compiling velo-demo/);
    expect(first.stderr).not.toMatch(/warning: remote/);

    const b = sb.clone('b');
    const r = veloCargo(['build', '--message-format=json'], b, { ...sb.env, ...remote, VELO_REMOTE_MODE: 'read', VELO_HOME: join(sb.root, 'home-b') });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/velo: restored .*\/b\/target from snapshot/);
    expect(r.stderr).not.toMatch(/warning: remote/);
    const list = artifacts(r.stdout);
    expect(units(list)).toEqual(ALL_UNITS);
    for (const unit of list) expect({ unit: `${unit.pkg}:${unit.kind}`, fresh: unit.fresh }).toEqual({ unit: `${unit.pkg}:${unit.kind}`, fresh: true });
    expect(r.stderr).not.toMatch(/Compiling/);
    expectSameDemoBinary(a, b, lstatSync);
  });

  test('the read-only key cannot publish: the build succeeds with one warning', () => {
    const c = sb.clone('c');
    const r = veloCargo(['build'], c, { ...sb.env, ...s3.env('ro'), VELO_REMOTE: `s3://${s3.bucket}/cargo2`, VELO_HOME: join(sb.root, 'home-c') });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/velo: stored .*target as snapshot/);
    const warnings = r.stderr.split('\n').filter((l) => l.startsWith('velo: warning:'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/publishing stopped: PUT .*access denied/);
  });

  test('--remote URL and --no-remote choose the remote for one run (not passed on to cargo)', async () => {
    const d = sb.clone('d');
    const off = veloCargo(['build', '--no-remote'], d, { ...sb.env, ...s3.env('rw'), VELO_REMOTE: `s3://${s3.bucket}/cargo3`, VELO_HOME: join(sb.root, 'home-d') });
    expect(off.code, off.stderr).toBe(0);
    expect(await s3.list('cargo3/')).toEqual([]);
    const e = sb.clone('e');
    const on = veloCargo(['build', '--remote', `s3://${s3.bucket}/cargo4`], e, { ...sb.env, ...s3.env('rw'), VELO_HOME: join(sb.root, 'home-e') });
    expect(on.code, on.stderr).toBe(0);
    expect(on.stderr).not.toMatch(/warning/);
    expect((await s3.list('cargo4/keys/')).length).toBe(1);
  });
});
