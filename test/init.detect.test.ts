// Ecosystem detection (src/project/detect.ts) and velo.json
// (src/project/projectConfig.ts) on directories the test writes.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectEcosystems, expandDirPattern, findProjectDir, type CargoDetection, type NpmDetection, type UvDetection } from '../src/project/detect.js';
import { defaultProjectConfig, parseProjectConfig, readProjectConfig, renderProjectConfig, writeProjectConfig } from '../src/project/projectConfig.js';
import { VeloError } from '../src/errors.js';
import { tempDirs } from './support/tmp.js';

const tmp = tempDirs('velo-init-');

function write(root: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), text);
  }
}

describe('detectEcosystems', () => {
  it('finds npm with workspaces (array form, globs, negation), uv with a workspace and a lock, and a cargo workspace — all at once', () => {
    const d = tmp();
    write(d, {
      'package.json': JSON.stringify({ name: 'mono', workspaces: ['packages/*', 'tools/cli', '!packages/skip'] }),
      'package-lock.json': '{}',
      'packages/a/package.json': '{"name":"a"}',
      'packages/b/package.json': '{"name":"b"}',
      'packages/skip/package.json': '{"name":"skip"}',
      'packages/not-a-package/README': 'no package.json here',
      'tools/cli/package.json': '{"name":"cli"}',
      'pyproject.toml': '[project]\nname = "svc"\nversion = "1"\n\n[tool.uv.workspace]\nmembers = [\n  "libs/*",  # libraries\n  \'apps/web\',\n]\n',
      'uv.lock': 'version = 1\n',
      'Cargo.toml': '[workspace]\nresolver = "2"\nmembers = ["crates/*"]\n\n[workspace.package]\nversion = "0.1.0"\n',
    });
    const found = detectEcosystems(d, {});
    expect(found.map((x) => x.ecosystem)).toEqual(['npm', 'uv', 'cargo']);
    const npm = found[0] as NpmDetection;
    expect(npm).toMatchObject({ lockfile: 'package-lock.json', name: 'mono', workspaceDirs: ['packages/a', 'packages/b', 'tools/cli'] });
    const uv = found[1] as UvDetection;
    expect(uv).toMatchObject({ lockfile: 'uv.lock', name: 'svc', workspaceMembers: ['libs/*', 'apps/web'], envDir: '.venv', envExists: false });
    const cargo = found[2] as CargoDetection;
    expect(cargo).toMatchObject({ lockfile: undefined, workspace: true, members: ['crates/*'], name: undefined });
  });

  it('reads the object form of npm workspaces, a shrinkwrap, a single cargo package, a pyproject without uv.lock, and UV_PROJECT_ENVIRONMENT', () => {
    const d = tmp();
    write(d, {
      'package.json': JSON.stringify({ name: 'x', workspaces: { packages: ['libs/**'] } }),
      'npm-shrinkwrap.json': '{}',
      'libs/deep/er/package.json': '{}',
      'Cargo.toml': '[package]\nname = "tool"\nversion = "0.1.0"\n',
      'Cargo.lock': '',
      'pyproject.toml': '[project]\nname = \'plain\'\n',
      'envs/py/bin/python': '',
    });
    const [npm, uv, cargo] = detectEcosystems(d, { UV_PROJECT_ENVIRONMENT: 'envs/py' }) as [NpmDetection, UvDetection, CargoDetection];
    expect(npm).toMatchObject({ lockfile: 'npm-shrinkwrap.json', workspaceDirs: ['libs/deep/er'] });
    expect(uv).toMatchObject({ lockfile: undefined, name: 'plain', envDir: 'envs/py', envExists: true, workspaceMembers: [] });
    expect(cargo).toMatchObject({ lockfile: 'Cargo.lock', workspace: false, members: [], name: 'tool' });
  });

  it('finds nothing in a directory without manifests, and refuses a broken package.json by name', () => {
    expect(detectEcosystems(tmp(), {})).toEqual([]);
    const d = tmp();
    write(d, { 'package.json': '{ not json' });
    expect(() => detectEcosystems(d, {})).toThrow(VeloError);
    expect(() => detectEcosystems(d, {})).toThrow(/package\.json: not valid JSON/);
  });

  it('expands workspace patterns without leaving the project or entering node_modules', () => {
    const d = tmp();
    write(d, { 'a/x/f': '', 'a/node_modules/y/f': '', 'a/.hidden/f': '', 'b/f': '' });
    expect(expandDirPattern(d, 'a/*')).toEqual(['a/x']);
    expect(expandDirPattern(d, './b/')).toEqual(['b']);
    expect(expandDirPattern(d, '../etc')).toEqual([]);
    expect(expandDirPattern(d, '**')).toEqual(['a', 'a/x', 'b']);
  });
});

describe('findProjectDir', () => {
  it('prefers the nearest velo.json, else the nearest manifest', () => {
    const d = tmp();
    write(d, { 'velo.json': '{}', 'web/package.json': '{}', 'web/src/x.js': '' });
    expect(findProjectDir(join(d, 'web', 'src'))).toEqual({ dir: d, hasConfig: true });
    const e = tmp();
    write(e, { 'web/package.json': '{}', 'web/src/x.js': '' });
    expect(findProjectDir(join(e, 'web', 'src'))).toEqual({ dir: join(e, 'web'), hasConfig: false });
  });
});

describe('velo.json', () => {
  it('is canonical: the same settings give the same bytes, unknown keys are kept, and writing them again writes nothing', () => {
    const d = tmp();
    const cfg = { ...defaultProjectConfig(['cargo', 'npm']), extra: { team: 'infra' } };
    const w1 = writeProjectConfig(d, cfg);
    expect(w1).toMatchObject({ changed: true, created: true });
    const text = readFileSync(join(d, 'velo.json'), 'utf8');
    expect(text).toBe(renderProjectConfig(cfg));
    const parsed = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(parsed)).toEqual(['$comment', 'ecosystems', 'projection', 'method', 'compileCache', 'team']);
    expect(parsed.ecosystems).toEqual(['npm', 'cargo']);
    expect((parsed.$comment as string[]).join(' ')).toMatch(/ecosystems: .* projection: .* method: .* compileCache: /s);
    const back = readProjectConfig(d)!;
    expect(back).toEqual({ ...cfg, ecosystems: ['npm', 'cargo'] });
    expect(writeProjectConfig(d, back)).toMatchObject({ changed: false });
  });

  it('refuses values velo does not know, naming the key', () => {
    expect(() => parseProjectConfig('{"method":"symlink"}')).toThrow(/"method" must be one of auto, reflink, hardlink, copy/);
    expect(() => parseProjectConfig('{"projection":"nfs"}')).toThrow(/"projection"/);
    expect(() => parseProjectConfig('{"ecosystems":["pip"]}')).toThrow(/"ecosystems"/);
    expect(() => parseProjectConfig('{"compileCache":"yes"}')).toThrow(/"compileCache"/);
    expect(() => parseProjectConfig('[1]')).toThrow(/expected a JSON object/);
    expect(parseProjectConfig('{}')).toEqual({ ecosystems: [], projection: 'link', method: 'auto', compileCache: true, extra: {} });
  });
});
