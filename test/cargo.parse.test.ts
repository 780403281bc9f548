/**
 * The small readers behind velo cargo: the command line, cargo's encoded
 * dep-info files (checked against files real cargo wrote), the snapshot key.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseCargoArgs } from '../src/cargo/cargoArgs.js';
import { parseEncodedDepInfo } from '../src/cargo/depInfo.js';
import { snapshotKey } from '../src/cargo/snapshotKey.js';
import { parseSnapshotName, snapshotName } from '../src/cargo/snapshots.js';
import { cargo, cargoSandbox, type CargoSandbox } from '../fixtures/cargo/harness.js';

describe('parseCargoArgs', () => {
  test('takes velo’s flags out and leaves cargo’s, and everything after --, alone', () => {
    const inv = parseCargoArgs(['+nightly', 'test', '--force', '-r', '--features', 'a,b', '-Fc', '--target=x86_64-unknown-linux-gnu', '--velo-incremental', '--', '--force']);
    expect(inv.cargoArgs).toEqual(['+nightly', 'test', '-r', '--features', 'a,b', '-Fc', '--target=x86_64-unknown-linux-gnu', '--', '--force']);
    expect(inv).toMatchObject({
      toolchain: 'nightly',
      subcommand: 'test',
      snapshotSubcommand: 'test',
      profile: 'release',
      features: ['a', 'b', 'c'],
      targets: ['x86_64-unknown-linux-gnu'],
      force: true,
      incremental: true,
    });
  });

  test('profile, manifest path, target dir, quiet; aliases; other subcommands are not snapshotted', () => {
    expect(parseCargoArgs(['b', '--profile', 'ci', '--manifest-path', 'x/Cargo.toml', '--target-dir=t', '-q'])).toMatchObject({
      snapshotSubcommand: 'build',
      profile: 'ci',
      manifestPath: 'x/Cargo.toml',
      targetDir: 't',
      quiet: true,
    });
    expect(parseCargoArgs(['--color', 'never', 'clippy']).snapshotSubcommand).toBe('clippy');
    expect(parseCargoArgs(['-p', 'x', 'check']).snapshotSubcommand).toBe('check');
    expect(parseCargoArgs(['fmt']).snapshotSubcommand).toBeUndefined();
    // --force belongs to cargo when velo does not wrap the subcommand
    expect(parseCargoArgs(['install', '--force', 'ripgrep']).cargoArgs).toEqual(['install', '--force', 'ripgrep']);
    expect(parseCargoArgs(['--force', 'build'])).toMatchObject({ force: true, cargoArgs: ['build'] });
    expect(parseCargoArgs(['build']).profile).toBe('dev');
  });

  test('--projection is velo’s: taken out, checked, and not part of the key', () => {
    expect(parseCargoArgs(['build', '--projection', 'mount', '--release'])).toMatchObject({ projection: 'mount', cargoArgs: ['build', '--release'] });
    expect(parseCargoArgs(['test', '--projection=link'])).toMatchObject({ projection: 'link', cargoArgs: ['test'] });
    expect(parseCargoArgs(['build']).projection).toBeUndefined();
    expect(() => parseCargoArgs(['build', '--projection', 'hardlink'])).toThrow(/--projection must be link or mount/);
    expect(() => parseCargoArgs(['build', '--projection'])).toThrow(/--projection must be link or mount/);
    const key = (args: string[]): string => snapshotKey(parseCargoArgs(args), 'lock', 'rustc 1', {}).id;
    expect(key(['build', '--projection', 'mount'])).toBe(key(['build']));
  });

  test('the key changes with what changes artifacts, not with order or unrelated flags', () => {
    const k = (args: string[], env: NodeJS.ProcessEnv = {}): string => snapshotKey(parseCargoArgs(args), 'lock', 'rustc 1', env).id;
    expect(k(['build', '-F', 'b,a'])).toBe(k(['build', '--features', 'a', '--features', 'b', '-q', '-p', 'x']));
    expect(k(['build'])).not.toBe(k(['build', '--release']));
    expect(k(['build'])).not.toBe(k(['build', '--target', 'wasm32-unknown-unknown']));
    expect(k(['build'])).not.toBe(k(['build'], { RUSTFLAGS: '-C target-cpu=native' }));
    expect(k(['build'])).toBe(k(['check'], { HOME: '/elsewhere' }));
    expect(snapshotKey(parseCargoArgs(['build']), 'lock2', 'rustc 1', {}).id).not.toBe(k(['build']));
    expect(snapshotKey(parseCargoArgs(['build']), 'lock', 'rustc 2', {}).id).not.toBe(k(['build']));
  });

  test('snapshot names round-trip and sort by time', () => {
    const name = snapshotName('0123456789abcdef0123456789abcdef', 1_700_000_000_123);
    expect(parseSnapshotName(name)).toEqual({ key: '0123456789abcdef0123456789abcdef', created: 1_700_000_000_123 });
    expect(snapshotName('0123456789abcdef0123456789abcdef', 9) < name).toBe(true);
    expect(parseSnapshotName('npm/left-pad@1.0.0')).toBeUndefined();
  });
});

describe('parseEncodedDepInfo on files real cargo wrote', () => {
  let sb: CargoSandbox;
  let root: string;
  beforeAll(() => {
    sb = cargoSandbox();
    root = sb.clone('w');
    const r = cargo(['build', '-q', '-p', 'render'], root, sb.env);
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(() => sb.remove());

  function depInfo(prefix: string): Buffer {
    const fp = join(root, 'target', 'debug', '.fingerprint');
    for (const dir of readdirSync(fp).filter((d) => d.startsWith(`${prefix}-`))) {
      const f = readdirSync(join(fp, dir)).find((n) => n.startsWith('dep-lib-'));
      if (f) return readFileSync(join(fp, dir, f));
    }
    throw new Error(`no dep-info for ${prefix}`);
  }

  test('a path package lists its sources relative to the package root', () => {
    expect(parseEncodedDepInfo(depInfo('geom'))).toEqual([{ kind: 'package', path: 'src/lib.rs' }]);
  });

  test('a registry package lists no package sources, only build-dir files (its OUT_DIR)', () => {
    const files = parseEncodedDepInfo(depInfo('tinyfmt'))!;
    expect(files.length).toBeGreaterThan(0);
    expect(files.every((f) => f.kind === 'build')).toBe(true);
    expect(files.some((f) => f.path.endsWith('/out/table.rs'))).toBe(true);
  });

  test('garbage is refused, not misread', () => {
    expect(parseEncodedDepInfo(Buffer.from([1, 0, 0, 0, 0xff, 9]))).toBeUndefined();
    expect(parseEncodedDepInfo(Buffer.from([5, 0, 0, 0, 0]))).toBeUndefined();
  });
});
