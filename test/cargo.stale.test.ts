/**
 * Snapshots as lean as target/: after dependency bumps a snapshot holds the
 * units the current Cargo.lock uses, not every earlier version's; switching
 * profiles keeps both profiles' units (debug → release → debug compiles
 * nothing it built before). Real cargo on the fixture workspace (build
 * scripts, a proc macro, registry crates with several versions).
 */
import { execFileSync } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { artifacts, cargo, cargoSandbox, veloCargo, type CargoSandbox } from '../fixtures/cargo/harness.js';

/** Set one registry package's version in a clone's Cargo.lock (what pulling a dependency bump does). */
function bump(clone: string, name: string, from: string, to: string): void {
  const lock = join(clone, 'Cargo.lock');
  const text = readFileSync(lock, 'utf8');
  const before = `name = "${name}"\nversion = "${from}"`;
  expect(text).toContain(before);
  writeFileSync(lock, text.replace(before, `name = "${name}"\nversion = "${to}"`));
}

const BUMPS: [string, string, string][] = [
  ['tinyhash', '0.3.1', '0.3.2'],
  ['tinyfmt', '1.2.0', '1.2.1'],
  ['tinyhash', '0.3.2', '0.3.3'],
];

/** Bytes of every file under dir, rustc's incremental caches left out (velo never stores them). */
function bytesOf(dir: string): number {
  let total = 0;
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    if (d.isDirectory()) {
      if (d.name !== 'incremental') total += bytesOf(p);
    } else if (d.isFile()) total += lstatSync(p).size;
  }
  return total;
}

function units(dir: string): string[] {
  return readdirSync(join(dir, 'target', 'debug', '.fingerprint')).sort();
}

function compiled(stderr: string): string[] {
  return [...stderr.matchAll(/^\s+Compiling (\S+)/gm)].map((m) => m[1]!).sort();
}

describe('velo cargo: after dependency bumps a snapshot holds what the current Cargo.lock uses', () => {
  let sb: CargoSandbox;
  let a: string;
  beforeAll(() => {
    sb = cargoSandbox();
    a = sb.clone('a');
    const first = veloCargo(['build'], a, sb.env);
    expect(first.code, first.stderr).toBe(0);
    for (const [name, from, to] of BUMPS) {
      bump(a, name, from, to);
      const r = veloCargo(['build'], a, sb.env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/velo: stored .*target as snapshot/);
    }
  });
  afterAll(() => sb.remove());

  test('the clone that built every version keeps them all (velo never deletes from a target dir)', () => {
    expect(units(a).filter((u) => u.startsWith('tinyhash-'))).toHaveLength(3);
  });

  test('a new clone restores one unit per crate, ≤ 1.2x plain cargo’s target, and compiles nothing', () => {
    const b = sb.clone('b');
    const c = sb.clone('c');
    for (const clone of [b, c]) for (const [name, from, to] of BUMPS) bump(clone, name, from, to);
    const restored = veloCargo(['build', '--message-format=json'], b, sb.env);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stderr).toMatch(/velo: restored .*\/b\/target from snapshot/);
    expect(restored.stderr).not.toMatch(/will rebuild/);
    expect(artifacts(restored.stdout).filter((x) => !x.fresh)).toEqual([]);
    const plain = cargo(['build'], c, sb.env);
    expect(plain.code, plain.stderr).toBe(0);
    // the same unit dirs as a clean build of this Cargo.lock: no earlier version's units
    expect(units(b)).toEqual(units(c));
    const ratio = bytesOf(join(b, 'target')) / bytesOf(join(c, 'target'));
    expect(ratio).toBeLessThanOrEqual(1.2);
    expect(ratio).toBeGreaterThan(0.8);
  });
});

describe('velo cargo: units of a Cargo.lock that is no longer current', () => {
  let sb: CargoSandbox;
  beforeAll(() => {
    sb = cargoSandbox();
  });
  afterAll(() => sb.remove());

  test('check units from before a bump leave the snapshot; going back to the old Cargo.lock keeps its units', () => {
    const r = sb.clone('r');
    for (const args of [['build'], ['check']]) expect(veloCargo(args, r, sb.env).code).toBe(0);
    bump(r, 'tinyhash', '0.3.1', '0.3.2');
    const bumped = veloCargo(['build'], r, sb.env);
    expect(bumped.code, bumped.stderr).toBe(0);
    // the check units were built against tinyhash 0.3.1, which the lock no longer has
    expect(bumped.stderr).toMatch(/velo: stored .*unit\(s\) no current build uses left out/);
    const b = sb.clone('b');
    const c = sb.clone('c');
    for (const clone of [b, c]) bump(clone, 'tinyhash', '0.3.1', '0.3.2');
    expect(veloCargo(['build'], b, sb.env).stderr).toMatch(/velo: restored/);
    expect(cargo(['build'], c, sb.env).code).toBe(0);
    // units built against tinyhash are exactly a clean build's; check units of crates that do not use it stay (still current)
    const usesTinyhash = (u: string): boolean => /^(tinyhash|tinyfmt|textkit|render|velo-demo)-[0-9a-f]{16}$/.test(u);
    expect(units(b).filter(usesTinyhash)).toEqual(units(c).filter(usesTinyhash));
    expect(units(b).filter((u) => u.startsWith('tinyhash-'))).toHaveLength(1);

    // back to the old lock, with one member edited so that the build stores: the old units are the used ones
    bump(r, 'tinyhash', '0.3.2', '0.3.1');
    const edit = (clone: string): void => {
      const main = join(clone, 'crates', 'velo-demo', 'src', 'main.rs');
      writeFileSync(main, readFileSync(main, 'utf8') + '\n#[allow(dead_code)]\nfn added_by_the_stale_test() {}\n');
    };
    edit(r);
    const back = veloCargo(['build', '-v'], r, sb.env);
    expect(back.code, back.stderr).toBe(0);
    expect(compiled(back.stderr)).toEqual(['velo-demo']);
    expect(back.stderr).toMatch(/velo: stored/);
    const d = sb.clone('d');
    edit(d);
    const restored = veloCargo(['build', '-v'], d, sb.env);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stderr).toMatch(/velo: restored/);
    expect(compiled(restored.stderr)).toEqual([]);
  });
});

describe('velo cargo: a --target build keeps the host units it uses', () => {
  let sb: CargoSandbox;
  beforeAll(() => {
    sb = cargoSandbox();
  });
  afterAll(() => sb.remove());

  test('build scripts and the proc macro (in debug/) stay in the snapshot of a --target build (in <triple>/debug/)', () => {
    const host = /^host: (\S+)$/m.exec(execFileSync('rustc', ['-vV'], { encoding: 'utf8' }))![1]!;
    const t = sb.clone('t');
    const first = veloCargo(['build', '-v', '--target', host], t, sb.env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/velo: stored/);
    const u = sb.clone('u');
    const r = veloCargo(['build', '-v', '--target', host], u, sb.env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/velo: restored/);
    expect(compiled(r.stderr)).toEqual([]);
    expect(r.stderr).toMatch(/Fresh shape_derive/);
  });
});

describe('velo cargo: switching profiles compiles nothing built before', () => {
  let sb: CargoSandbox;
  beforeAll(() => {
    sb = cargoSandbox();
  });
  afterAll(() => sb.remove());

  test('debug → release → debug → release in one clone, then both profiles in a new clone', () => {
    const p = sb.clone('p');
    const steps: [string[], boolean][] = [
      [['build', '-v'], true],
      [['build', '-v', '--release'], true],
      [['build', '-v'], false],
      [['build', '-v', '--release'], false],
    ];
    for (const [i, [args, compiles]] of steps.entries()) {
      const r = veloCargo(args, p, sb.env);
      // back to a profile with nothing compiled: the target is registered as it is (nothing read or stored again)
      if (i === 2) expect(r.stderr).toMatch(/velo: .*\/p\/target is unchanged: snapshot \w+ now also stands for this build/);
      if (i === 3) expect(r.stderr).toMatch(/velo: .*\/p\/target is unchanged: snapshot \w+ is already stored for this build/);
      expect(r.code, r.stderr).toBe(0);
      if (compiles) expect(compiled(r.stderr).length, args.join(' ')).toBeGreaterThan(0);
      else {
        expect({ args, compiled: compiled(r.stderr) }).toEqual({ args, compiled: [] });
        expect(r.stderr).toMatch(/Fresh velo-demo/);
      }
    }
    // a new clone: each profile restored (or already there), nothing compiled either way round
    const q = sb.clone('q');
    for (const args of [['build', '-v', '--release'], ['build', '-v'], ['build', '-v', '--release']]) {
      const r = veloCargo(args, q, sb.env);
      expect(r.code, r.stderr).toBe(0);
      expect({ args, compiled: compiled(r.stderr) }).toEqual({ args, compiled: [] });
    }
    expect(readdirSync(join(q, 'target')).filter((n) => n === 'debug' || n === 'release').sort()).toEqual(['debug', 'release']);
  });
});
