/**
 * cargo.remapPathPrefix: a restored binary's debug info names the clone
 * that compiled it; with the setting velo gives rustc
 * `--remap-path-prefix=<workspace root>=<to>`, and the snapshot key follows
 * (cargo's fingerprint holds the rustflags: such targets are per clone).
 */
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { artifacts, cargoSandbox, veloCargo, type CargoSandbox } from '../fixtures/cargo/harness.js';

function binaryNames(clone: string, path: string): boolean {
  return readFileSync(join(clone, 'target', 'debug', 'velo-demo')).includes(Buffer.from(path));
}

function geomRustflags(clone: string): string[] {
  const fp = join(clone, 'target', 'debug', '.fingerprint');
  const dir = readdirSync(fp).find((d) => d.startsWith('geom-'))!;
  return (JSON.parse(readFileSync(join(fp, dir, 'lib-geom.json'), 'utf8')) as { rustflags: string[] }).rustflags;
}

describe('velo cargo: cargo.remapPathPrefix', () => {
  let sb: CargoSandbox;
  let plain: string;
  beforeAll(() => {
    sb = cargoSandbox();
    plain = sb.clone('plain');
    const r = veloCargo(['build'], plain, sb.env);
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(() => sb.remove());

  test('without it a restored binary names the clone that built it', () => {
    const other = sb.clone('other');
    const r = veloCargo(['build'], other, sb.env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/velo: restored/);
    expect(binaryNames(other, plain)).toBe(true);
    expect(binaryNames(other, other)).toBe(false);
  });

  test('from velo.json: the binary names no clone, the key is its own, and the clone restores its own snapshot', () => {
    const r1 = sb.clone('remapped');
    writeFileSync(join(r1, 'velo.json'), JSON.stringify({ cargo: { remapPathPrefix: '.' } }));
    const first = veloCargo(['build'], r1, sb.env);
    expect(first.code, first.stderr).toBe(0);
    // the plain clones' snapshot is for other rustflags: nothing restored, cargo compiles
    expect(first.stderr).not.toMatch(/velo: restored/);
    expect(first.stderr).toMatch(/Compiling velo-demo/);
    expect(first.stderr).toMatch(/velo: stored/);
    expect(binaryNames(r1, r1)).toBe(false);
    expect(geomRustflags(r1)).toEqual([`--remap-path-prefix=${r1}=.`]);
    rmSync(join(r1, 'target'), { recursive: true, force: true });
    const again = veloCargo(['build', '--message-format=json'], r1, sb.env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/velo: restored/);
    expect(artifacts(again.stdout).filter((x) => !x.fresh)).toEqual([]);
  });

  test('from the environment, after the RUSTFLAGS the user set', () => {
    const r2 = sb.clone('remapped-env');
    const env = { ...sb.env, RUSTFLAGS: '-C debug-assertions=on', VELO_CARGO_REMAP_PATH_PREFIX: '/src' };
    const r = veloCargo(['build'], r2, env);
    expect(r.code, r.stderr).toBe(0);
    expect(geomRustflags(r2)).toEqual(['-C', 'debug-assertions=on', `--remap-path-prefix=${r2}=/src`]);
    expect(binaryNames(r2, r2)).toBe(false);
  });

  test('a malformed setting is a clear error before cargo runs', () => {
    const r3 = sb.clone('bad');
    writeFileSync(join(r3, 'velo.json'), JSON.stringify({ cargo: { remapPathPrefix: 7 } }));
    const r = veloCargo(['build'], r3, sb.env);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/"cargo.remapPathPrefix" must be a path/);
    expect(r.stderr).not.toMatch(/Compiling/);
  });
});
