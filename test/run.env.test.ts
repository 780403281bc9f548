// The environment velo run builds (src/project/runEnv.ts) and its argument
// parsing, on directories the test lays out.
import { mkdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { binDirs, buildRunEnv, compileCacheDir } from '../src/project/runEnv.js';
import { parseRunArgs } from '../cli/runCommand.js';
import { tempDirs } from './support/tmp.js';

const tmp = tempDirs('velo-run-env-');

function layout(): { root: string; sub: string; home: string } {
  const root = tmp();
  const sub = join(root, 'packages', 'web');
  for (const d of [join(root, 'node_modules', '.bin'), join(sub, 'node_modules', '.bin'), join(root, '.venv', 'bin'), join(root, 'packages', 'src')]) mkdirSync(d, { recursive: true });
  return { root, sub, home: join(root, 'store') };
}

describe('the run environment', () => {
  it('puts node_modules/.bin of the working directory and each parent up to the root first, then the venv, then the old PATH', () => {
    const { root, sub, home } = layout();
    const r = buildRunEnv({ root, cwd: sub, env: { PATH: `/usr/bin${delimiter}/bin`, PYTHONHOME: '/opt/py' }, home, compileCache: true });
    expect(r.env.PATH!.split(delimiter)).toEqual([join(sub, 'node_modules', '.bin'), join(root, 'node_modules', '.bin'), join(root, '.venv', 'bin'), '/usr/bin', '/bin']);
    expect(r.env.VIRTUAL_ENV).toBe(join(root, '.venv'));
    expect(r.env.PYTHONHOME).toBeUndefined(); // as `activate` does
    expect(r.virtualEnv).toBe(join(root, '.venv'));
  });

  it('skips directories that do not exist and leaves the environment alone without a venv', () => {
    const root = tmp();
    mkdirSync(join(root, 'a', 'b'), { recursive: true });
    const r = buildRunEnv({ root, cwd: join(root, 'a', 'b'), env: { PATH: '/bin', PYTHONHOME: '/opt/py' }, home: join(root, 'store'), compileCache: false });
    expect(r.env.PATH).toBe('/bin');
    expect(r.env.VIRTUAL_ENV).toBeUndefined();
    expect(r.env.PYTHONHOME).toBe('/opt/py');
    expect(r.env.NODE_COMPILE_CACHE).toBeUndefined();
    expect(binDirs(root, join(root, 'a', 'b'))).toEqual([]);
  });

  it('keeps Node\'s compile cache in the store, unless the user chose their own or turned it off', () => {
    const { root, home } = layout();
    expect(buildRunEnv({ root, cwd: root, env: {}, home, compileCache: true }).env.NODE_COMPILE_CACHE).toBe(compileCacheDir(home));
    expect(buildRunEnv({ root, cwd: root, env: { NODE_COMPILE_CACHE: '/mine' }, home, compileCache: true }).env.NODE_COMPILE_CACHE).toBe('/mine');
    expect(buildRunEnv({ root, cwd: root, env: { NODE_COMPILE_CACHE: '' }, home, compileCache: true }).env.NODE_COMPILE_CACHE).toBe('');
    expect(buildRunEnv({ root, cwd: root, env: { NODE_DISABLE_COMPILE_CACHE: '1' }, home, compileCache: true }).env.NODE_COMPILE_CACHE).toBeUndefined();
  });

  it('honours UV_PROJECT_ENVIRONMENT for the venv', () => {
    const root = tmp();
    mkdirSync(join(root, 'envs', 'py', 'bin'), { recursive: true });
    const r = buildRunEnv({ root, cwd: root, env: { PATH: '/bin', UV_PROJECT_ENVIRONMENT: 'envs/py' }, home: join(root, 's'), compileCache: false });
    expect(r.env.VIRTUAL_ENV).toBe(join(root, 'envs', 'py'));
    expect(r.env.PATH).toBe(`${join(root, 'envs', 'py', 'bin')}${delimiter}/bin`);
  });
});

describe('velo run arguments', () => {
  it('takes velo\'s options before the command and everything after it as the command\'s', () => {
    expect(parseRunArgs(['node', '--no-install', '-e', '1'])).toEqual({ install: true, quiet: false, command: ['node', '--no-install', '-e', '1'] });
    expect(parseRunArgs(['--no-install', '-q', 'npm', 'test'])).toEqual({ install: false, quiet: true, command: ['npm', 'test'] });
    expect(parseRunArgs(['--', '--weird'])).toEqual({ install: true, quiet: false, command: ['--weird'] });
    expect(parseRunArgs(['--help'])).toBe('help');
    expect(() => parseRunArgs(['--frobnicate', 'x'])).toThrow(/unknown option --frobnicate/);
  });
});
