/**
 * What velo says about cargo targets adds up: `velo status` counts each
 * stored object once (as the objects/ directory holds them), leaves out
 * projects and snapshots of deleted clones before gc frees them, and the
 * restore line counts the units this build rebuilds — not other profiles'.
 */
import { spawnSync } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { cargoSandbox, REPO_ROOT, veloCargo, type CargoSandbox } from '../fixtures/cargo/harness.js';
import { rebuiltPackages } from './support/cargoChecks.js';

interface StatusJson {
  objects: number;
  physicalBytes: number;
  projects: { path: string; ecosystem: string }[];
  missingProjects: { path: string }[];
  cargoSnapshots: { snapshots: number; projects: number; unreferenced: number };
}

function status(sb: CargoSandbox): StatusJson {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'dist', 'cli', 'velo.js'), 'status', '--json'], { env: sb.env, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as StatusJson;
}

/** What objects/ really holds. */
function objectsOnDisk(home: string): { objects: number; bytes: number } {
  let objects = 0;
  let bytes = 0;
  const dir = join(home, 'objects');
  for (const prefix of readdirSync(dir)) {
    for (const name of readdirSync(join(dir, prefix))) {
      objects++;
      bytes += lstatSync(join(dir, prefix, name)).size;
    }
  }
  return { objects, bytes };
}

describe('velo cargo: status and restore figures', () => {
  let sb: CargoSandbox;
  let a: string;
  let b: string;
  beforeAll(() => {
    sb = cargoSandbox();
    a = sb.clone('a');
    for (const args of [['build'], ['build', '--release']]) {
      const r = veloCargo(args, a, sb.env);
      expect(r.code, r.stderr).toBe(0);
    }
  });
  afterAll(() => sb.remove());

  test('velo status counts every stored object once', () => {
    const s = status(sb);
    const disk = objectsOnDisk(sb.home);
    expect({ objects: s.objects, bytes: s.physicalBytes }).toEqual({ objects: disk.objects, bytes: disk.bytes });
    // a stored rebuild adds its new objects once too
    const file = join(a, 'crates', 'mathx', 'src', 'lib.rs');
    writeFileSync(file, readFileSync(file, 'utf8') + '\npub fn added_by_the_counts_test() -> u8 { 3 }\n');
    const r = veloCargo(['build'], a, sb.env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/velo: stored/);
    const after = status(sb);
    const disk2 = objectsOnDisk(sb.home);
    expect({ objects: after.objects, bytes: after.physicalBytes }).toEqual({ objects: disk2.objects, bytes: disk2.bytes });
  });

  test('the restore line counts the units this profile rebuilds, not the other profile’s', () => {
    b = sb.clone('b');
    const file = join(b, 'crates', 'geom', 'src', 'lib.rs');
    writeFileSync(file, readFileSync(file, 'utf8').replace('mathx::isqrt(dx * dx + dy * dy)', 'mathx::isqrt(dx * dx + dy * dy) + 1'));
    // the release snapshot holds debug/ and release/: geom changed in both, this build rebuilds release's
    const r = veloCargo(['build', '--release', '--message-format=json'], b, sb.env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/velo: restored .*; 1 unit\(s\) changed since and will rebuild/);
    expect(rebuiltPackages(r.stdout)).toEqual(['geom', 'render', 'shapes', 'velo-demo']);
  });

  test('a deleted clone’s project and snapshots leave the figures before gc', () => {
    const before = status(sb);
    expect(before.projects.map((p) => p.path)).toContain(a);
    const aOnly = before.cargoSnapshots.snapshots;
    rmSync(a, { recursive: true, force: true });
    const s = status(sb);
    expect(s.projects.map((p) => p.path)).not.toContain(a);
    expect(s.missingProjects.map((p) => p.path)).toContain(a);
    expect(s.cargoSnapshots.projects).toBe(1);
    expect(s.cargoSnapshots.snapshots).toBeLessThan(aOnly);
    expect(s.cargoSnapshots.unreferenced).toBe(aOnly - s.cargoSnapshots.snapshots);
    const text = spawnSync(process.execPath, [join(REPO_ROOT, 'dist', 'cli', 'velo.js'), 'status'], { env: sb.env, encoding: 'utf8' }).stdout;
    expect(text).toMatch(/1 more whose directories are gone: velo gc unregisters them/);
    expect(text).not.toContain(`${a} [cargo]`);
  });
});
