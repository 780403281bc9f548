/**
 * velo cargo's refusals and limits, against real cargo: a target dir velo
 * did not make, or changed by hand, is never replaced without --force; a
 * missing rustc is a clear error; an unchanged target costs little before
 * cargo starts; old snapshots can be dropped per project.
 */
import { spawnSync } from 'node:child_process';
import { statSync, chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { artifacts, cargo, cargoSandbox, veloCargo, REPO_ROOT, type CargoSandbox } from '../fixtures/cargo/harness.js';
import { withStore } from './support/cargoChecks.js';

const dist = (p: string): string => join(REPO_ROOT, 'dist', p);
const snaps = (await import(dist('src/cargo/snapshots.js'))) as typeof import('../src/cargo/snapshots.js');
const { collectGarbage } = (await import(dist('src/store/gc.js'))) as typeof import('../src/store/gc.js');
const { projectKeys } = (await import(dist('src/store/keys.js'))) as typeof import('../src/store/keys.js');

describe('velo cargo: what it refuses and what it costs', () => {
  let sb: CargoSandbox;
  let a: string;
  beforeAll(() => {
    sb = cargoSandbox();
    a = sb.clone('a');
    const r = veloCargo(['build'], a, sb.env);
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(() => sb.remove());

  test('a target dir plain cargo made is adopted: cargo builds in it as it is, velo stores it', () => {
    const c = sb.clone('c');
    expect(cargo(['build', '-q'], c, sb.env).code).toBe(0);
    writeFileSync(join(c, 'target', 'debug', 'mine.txt'), 'the user’s\n');
    const inode = lstatSync(join(c, 'target', 'debug', 'velo-demo')).ino;
    const adopted = veloCargo(['build', '--message-format=json'], c, sb.env);
    expect(adopted.code, adopted.stderr).toBe(0);
    expect(adopted.stderr).toMatch(/velo: adopted .*\/c\/target \(made by cargo\)/);
    expect(adopted.stderr).not.toMatch(/velo: restored/);
    expect(artifacts(adopted.stdout).filter((x) => !x.fresh)).toEqual([]);
    expect(readFileSync(join(c, 'target', 'debug', 'mine.txt'), 'utf8')).toBe('the user’s\n');
    expect(lstatSync(join(c, 'target', 'debug', 'velo-demo')).ino).toBe(inode);
    expect(adopted.stderr).toMatch(/velo: stored .*\/c\/target as snapshot/);
    expect(existsSync(join(c, 'target', '.velo', 'state.json'))).toBe(true);
  });

  test('a target dir without cargo’s markers is never replaced without --force', () => {
    const c = sb.clone('c2');
    expect(cargo(['build', '-q'], c, sb.env).code).toBe(0);
    rmSync(join(c, 'target', 'CACHEDIR.TAG'));
    writeFileSync(join(c, 'target', 'debug', 'mine-c2.txt'), 'the user’s\n');
    const inode = lstatSync(join(c, 'target', 'debug', 'velo-demo')).ino;
    const refused = veloCargo(['build'], c, sb.env);
    expect(refused.code).toBe(16);
    expect(refused.stderr).toMatch(/velo: .*\/c2\/target was not made by velo, and has no CACHEDIR.TAG and .rustc_info.json from cargo; velo will not replace it/);
    expect(refused.stderr).toMatch(/hint: run again with --force/);
    expect(refused.stderr).not.toMatch(/Compiling|Finished/); // cargo did not run
    expect(readFileSync(join(c, 'target', 'debug', 'mine-c2.txt'), 'utf8')).toBe('the user’s\n');
    expect(lstatSync(join(c, 'target', 'debug', 'velo-demo')).ino).toBe(inode);

    const forced = veloCargo(['build', '--force', '--message-format=json'], c, sb.env);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toMatch(/velo: restored/);
    expect(existsSync(join(c, 'target', 'debug', 'mine-c2.txt'))).toBe(false);
    expect(artifacts(forced.stdout).filter((x) => !x.fresh)).toEqual([]);
  });

  test('with no snapshot to restore, a target velo did not make is adopted, not refused', () => {
    const e = sb.clone('e');
    // a build velo has no snapshot for (a feature set nobody stored yet)
    expect(cargo(['build', '-q', '--features', 'velo-demo/loud', '--release'], e, sb.env).code).toBe(0);
    const r = veloCargo(['build', '--features', 'velo-demo/loud', '--release'], e, sb.env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/velo: stored/);
    expect(existsSync(join(e, 'target', '.velo', 'state.json'))).toBe(true);
  });

  test('a velo target changed by hand is not replaced when the build changes key; an unchanged one is', () => {
    const b = sb.clone('b');
    const d = sb.clone('d');
    for (const clone of [b, d]) expect(veloCargo(['build', '-q'], clone, sb.env).code).toBe(0);
    // a stores a newer snapshot under another key (a feature)
    const loudA = veloCargo(['build', '--features', 'velo-demo/loud'], a, sb.env);
    expect(loudA.code, loudA.stderr).toBe(0);
    expect(loudA.stderr).toMatch(/velo: stored/);

    appendFileSync(join(b, 'target', 'debug', 'velo-demo'), 'patched by hand');
    const refused = veloCargo(['build', '--features', 'velo-demo/loud'], b, sb.env);
    expect(refused.code).toBe(16);
    expect(refused.stderr).toMatch(/\/b\/target has changed since velo last restored or stored it/);
    expect(readFileSync(join(b, 'target', 'debug', 'velo-demo')).subarray(-15).toString()).toBe('patched by hand');

    const restored = veloCargo(['build', '--features', 'velo-demo/loud', '--message-format=json'], d, sb.env);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stderr).toMatch(/velo: restored/);
    expect(artifacts(restored.stdout).filter((x) => !x.fresh)).toEqual([]);
    expect(spawnSync(join(d, 'target', 'debug', 'velo-demo'), { encoding: 'utf8' }).stdout).toContain('LOUD');

    const forced = veloCargo(['build', '-q', '--features', 'velo-demo/loud', '--force'], b, sb.env);
    expect(forced.code, forced.stderr).toBe(0);
    expect(spawnSync(join(b, 'target', 'debug', 'velo-demo'), { encoding: 'utf8' }).stdout).toContain('LOUD');
  });

  test('what a killed restore left beside the target is cleaned up, and the restore happens', () => {
    const h = sb.clone('h');
    // a dead velo's half-built staging dir (pid 999999 is not running)
    const leftover = join(h, '.target.velo-new-999999-0badf00d');
    mkdirSync(join(leftover, 'debug'), { recursive: true });
    writeFileSync(join(leftover, 'debug', 'half-written'), 'x');
    const r = veloCargo(['build', '--message-format=json'], h, sb.env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/velo: restored/);
    expect(existsSync(leftover)).toBe(false);
    expect(artifacts(r.stdout).filter((x) => !x.fresh)).toEqual([]);
  });

  test('without rustc velo says so before cargo runs, and touches nothing', () => {
    const f = sb.clone('f');
    const env = { ...sb.env, PATH: '/usr/bin:/bin' };
    const r = veloCargo(['build'], f, env);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/velo: cannot run rustc \(rustc\): not found/);
    expect(r.stderr).toMatch(/hint: velo cargo needs the Rust compiler/);
    expect(existsSync(join(f, 'target'))).toBe(false);
    const wrong = veloCargo(['build'], f, { ...sb.env, RUSTC: join(sb.root, 'no-such-rustc') });
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toMatch(/cannot run rustc \(.*no-such-rustc\): not found/);
  });

  // How long the no-op takes is measured by bench/noop-bench.mjs beside `node -e 0`;
  // this test checks that the no-op does nothing but start cargo.
  test('an unchanged target starts cargo at once: nothing restored, stored or rewritten', () => {
    const g = sb.clone('g');
    expect(veloCargo(['build', '-q'], g, sb.env).code).toBe(0);
    expect(veloCargo(['build', '-q'], g, sb.env).code).toBe(0); // state now caches rustc -vV
    const state = join(g, 'target', '.velo', 'state.json');
    const stateBefore = readFileSync(state, 'utf8');
    const storeIndex = join(sb.env.VELO_HOME!, 'index.db');
    const indexBefore = statSync(storeIndex).mtimeMs;
    const stamps = join(sb.root, 'cargo-started');
    const fakeCargo = join(sb.root, 'fake-cargo.sh');
    writeFileSync(fakeCargo, `#!/bin/sh\necho "$@" >> ${JSON.stringify(stamps)}\n`);
    chmodSync(fakeCargo, 0o755);
    rmSync(stamps, { force: true });
    const r = veloCargo(['build', '-q'], g, { ...sb.env, CARGO: fakeCargo });
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(stamps, 'utf8').trim()).toBe('build -q');
    expect(r.stderr).not.toMatch(/restor|stored/);
    expect(readFileSync(state, 'utf8')).toBe(stateBefore);
    expect(statSync(storeIndex).mtimeMs).toBe(indexBefore);
  });

  test('snapshots are listed with their projects; dropSnapshots keeps the newest N per project and gc leaves restorable ones', () => {
    // two more snapshots of a's own, from edited sources
    for (const mark of ['one', 'two']) {
      appendFileSync(join(a, 'crates', 'mathx', 'src', 'lib.rs'), `\n// edit ${mark}\n`);
      const r = veloCargo(['build'], a, sb.env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/velo: stored/);
    }
    const before = withStore(sb, (s) => snaps.listSnapshots(s));
    expect(before.length).toBeGreaterThanOrEqual(5);
    expect(before[0]!.projects).toEqual([a]); // newest first
    const summary = withStore(sb, (s) => snaps.summarizeSnapshots(s));
    expect(summary.snapshots).toBe(before.length);
    expect(summary.uniqueBytes).toBeLessThan(summary.logicalBytes / 2); // snapshots share their artifacts
    const dry = withStore(sb, (s) => snaps.dropSnapshots(s, 1, { dryRun: true }));
    expect(withStore(sb, (s) => snaps.listSnapshots(s)).length).toBe(before.length);
    const report = withStore(sb, (s) => snaps.dropSnapshots(s, 1));
    expect(report.dropped).toEqual(dry.dropped);
    expect(report.dropped).toContain(before[1]!.name); // a's previous one: no other project uses it
    const after = withStore(sb, (s) => snaps.listSnapshots(s));
    expect(after.map((x) => x.name).sort()).toEqual(before.map((x) => x.name).filter((n) => !report.dropped.includes(n)).sort());
    withStore(sb, (s) => {
      for (const name of ['a', 'b', 'c', 'd', 'e', 'g', 'h']) {
        expect(projectKeys(s, join(sb.root, name), 'cargo').filter((k) => k.startsWith('cargo-target/')).length).toBeLessThanOrEqual(1);
      }
      collectGarbage(s);
    });
    // a keeps its newest snapshot: after the sweep it still restores, fresh
    rmSync(join(a, 'target'), { recursive: true, force: true });
    const r = veloCargo(['build', '--message-format=json'], a, sb.env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`velo: restored .* from snapshot ${before[0]!.tree.slice(0, 12)}`));
    expect(artifacts(r.stdout).filter((x) => !x.fresh)).toEqual([]);
  });
});
