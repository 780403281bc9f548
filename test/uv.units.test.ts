/**
 * The pure parts of velo's uv support: the TOML reader and uv.lock, RECORD
 * rows, shebangs, how `velo uv sync` sorts its arguments, and what the
 * environment key sees.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { VeloError } from '../src/errors.js';
import { envKey, type EnvKeyInput } from '../src/uv/envManifest.js';
import { tempDirs } from './support/tmp.js';
import { parseRecord, recordHash, serializeRecord, withUpdatedRows } from '../src/uv/record.js';
import { formatShebang, stripShebang, withShebang } from '../src/uv/shebang.js';
import { parseSyncArgs } from '../src/uv/syncArgs.js';
import { isShareable, parseUvLock } from '../src/uv/uvLock.js';
import { pycPathFor } from '../src/uv/compileBytecode.js';

const LOCK = `version = 1
revision = 3
requires-python = ">=3.11"
resolution-markers = [
    "sys_platform == 'win32'",
    "sys_platform != 'win32'",
]

[options]
exclude-newer = "2025-01-01T00:00:00Z"

[manifest]
members = ["demo", "lib"]

[[package]]
name = "demo"
version = "0.1.0"
source = { editable = "." }
dependencies = [
    { name = "colorama", marker = "sys_platform == 'win32'" },
    { name = "lib" },
]

[package.optional-dependencies]
fast = [{ name = "orjson" }]

[package.metadata]
requires-dist = [{ name = "colorama", marker = "sys_platform == 'win32'" }, { name = "lib", editable = "lib" }]

[package.metadata.requires-dev]
dev = [{ name = "pytest", specifier = ">=8" }]

[[package]]
name = "colorama"
version = "0.4.6"
source = { registry = "https://pypi.org/simple" }
sdist = { url = "https://files.pythonhosted.org/packages/d8/53/colorama-0.4.6.tar.gz", hash = "sha256:08695f5cb7ed6e0531a20572697297273c47b8cae5a63ffc6d6ed5c201be6e44", size = 27697, upload-time = "2022-10-25T02:36:22.414Z" }
wheels = [
    { url = "https://files.pythonhosted.org/packages/d1/d6/colorama-0.4.6-py2.py3-none-any.whl", hash = "sha256:4f1d9991f5acc0ca119f9d443620b77f9d6b33703e51011c16baf57afb285fc6", size = 25335, upload-time = "2022-10-25T02:36:20.889Z" },
]

[[package]]
name = "lib"
version = "1.0.0"
source = { editable = "lib" }

[[package]]
name = "tool"
version = "2.0"
source = { url = "https://example.com/tool-2.0-py3-none-any.whl" }
wheels = [
    { url = "https://example.com/tool-2.0-py3-none-any.whl", hash = "sha256:00ff" },
]

[[package]]
name = "gitdep"
version = "0.1"
source = { git = "https://github.com/o/r?rev=main#0123abcd" }
`;

describe('TOML and uv.lock', () => {
  test('reads a uv.lock with every source kind', () => {
    const lock = parseUvLock(LOCK, '/p/uv.lock');
    expect(lock).toMatchObject({ version: 1, revision: 3, requiresPython: '>=3.11' });
    expect(lock.packages.map((p) => [p.name, p.version, p.source.kind, isShareable(p.source)])).toEqual([
      ['demo', '0.1.0', 'editable', false],
      ['colorama', '0.4.6', 'registry', true],
      ['lib', '1.0.0', 'editable', false],
      ['tool', '2.0', 'url', true],
      ['gitdep', '0.1', 'git', false],
    ]);
    const colorama = lock.packages[1]!;
    expect(colorama.wheels).toEqual([
      {
        filename: 'colorama-0.4.6-py2.py3-none-any.whl',
        url: 'https://files.pythonhosted.org/packages/d1/d6/colorama-0.4.6-py2.py3-none-any.whl',
        hash: 'sha256:4f1d9991f5acc0ca119f9d443620b77f9d6b33703e51011c16baf57afb285fc6',
        size: 25335,
      },
    ]);
    expect(colorama.sdist?.filename).toBe('colorama-0.4.6.tar.gz');
  });

  test.each([
    ['version = 1\nname = "unterminated\n', 'line 2, column 21: control characters are not allowed in strings'],
    ['version = 1\nversion = 1\n', 'line 2, column 1: trying to redefine an already defined table or value'],
    ['version = 1\nx = nope\n', 'line 2, column 5: invalid value'],
  ])('a uv.lock that is not TOML names the line, the column and the problem %#', (text, message) => {
    expect(() => parseUvLock(text, '/p/uv.lock')).toThrow(`/p/uv.lock is not a valid uv.lock: ${message}`);
  });

  test.each([
    ['version = 2\n', 'lock version 2 is not supported'],
    ['revision = 1\n', 'the top-level `version` is missing'],
    ['version = 1\n[[package]]\nversion = "1"\nsource = { registry = "x" }\n', '[[package]] #1 has no valid `name`'],
    ['version = 1\n[[package]]\nname = "a"\nversion = "1"\n', 'package "a" has no `source` table'],
    ['version = 1\n[[package]]\nname = "a"\nversion = "1"\nsource = { registry = "x", git = "y" }\n', 'several kinds (registry, git)'],
    ['version = 1\n[[package]]\nname = "a"\nsource = { registry = "x" }\n', 'package "a" from a registry source has no `version`'],
    ['version = 1\n[[package]]\nname = "a"\nversion = "1"\nsource = { registry = "x" }\nwheels = [{ url = "https://x/a-1.tar.gz" }]\n', 'is not a .whl file'],
    ['version = 1\n[[package]]\nname = "a"\nversion = "1"\nsource = { registry = "x" }\nwheels = [{ url = "https://x/a-1-py3-none-any.whl", hash = "md5" }]\n', 'malformed `hash`'],
  ])('uv.lock error %#', (text, message) => {
    let caught: unknown;
    try {
      parseUvLock(text, '/p/uv.lock');
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(VeloError);
    expect((caught as VeloError).code).toBe('LOCKFILE');
    expect((caught as VeloError).message).toContain('/p/uv.lock is not a valid uv.lock: ');
    expect((caught as VeloError).message).toContain(message);
  });
});

describe('RECORD', () => {
  const text = 'pkg/__init__.py,sha256=abc,10\n"pkg/odd,name.txt",sha256=def,3\n../../../bin/tool,sha256=old,5\npkg-1.dist-info/RECORD,,\n';

  test('round-trips, quoted fields included', () => {
    const rows = parseRecord(text);
    expect(rows.map((r) => [r.path, r.hash, r.size])).toEqual([
      ['pkg/__init__.py', 'sha256=abc', '10'],
      ['pkg/odd,name.txt', 'sha256=def', '3'],
      ['../../../bin/tool', 'sha256=old', '5'],
      ['pkg-1.dist-info/RECORD', '', ''],
    ]);
    expect(serializeRecord(rows)).toBe(text);
  });

  test('rewrites only the rows given new contents', () => {
    const launcher = Buffer.from('#!/env/bin/python\nprint(1)\n');
    const out = serializeRecord(withUpdatedRows(parseRecord(text), new Map([['../../../bin/tool', launcher]])));
    expect(out).toBe(text.replace('../../../bin/tool,sha256=old,5', `../../../bin/tool,${recordHash(launcher)},${launcher.length}`));
    expect(recordHash(Buffer.from(''))).toBe('sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU');
  });
});

describe('shebangs and bytecode paths', () => {
  test('short paths get #!<python>, long or spaced ones a /bin/sh trampoline', () => {
    expect(formatShebang('/p/.venv/bin/python')).toBe('#!/p/.venv/bin/python');
    expect(formatShebang("/my project/it's/.venv/bin/python")).toBe(
      `#!/bin/sh\n'''exec' '/my project/it'"'"'s/.venv/bin/python' "$0" "$@"\n' '''`,
    );
    const long = `/${'x'.repeat(130)}/bin/python`;
    expect(formatShebang(long).startsWith('#!/bin/sh\n')).toBe(true);
    for (const python of ['/p/.venv/bin/python', long, '/a b/bin/python']) {
      const body = Buffer.from('# -*- coding: utf-8 -*-\nimport sys\n');
      const file = withShebang(body, python);
      expect(stripShebang(file, python)).toEqual(body);
      expect(stripShebang(file, '/other/bin/python')).toBeUndefined();
    }
    expect(stripShebang(Buffer.from('\x7fELF binary'), '/p/.venv/bin/python')).toBeUndefined();
  });

  test('pyc paths follow the interpreter cache tag', () => {
    expect(pycPathFor('lib/python3.11/site-packages/pkg/mod.py', 'cpython-311')).toBe('lib/python3.11/site-packages/pkg/__pycache__/mod.cpython-311.pyc');
    expect(pycPathFor('top.py', 'cpython-312')).toBe('__pycache__/top.cpython-312.pyc');
  });
});

describe('velo uv sync arguments', () => {
  test('sorted into uv lock, uv sync, velo and the fingerprint', () => {
    const a = parseSyncArgs(['--locked', '--no-dev', '--python', '3.11', '--json', '--offline', '--extra=fast', '-p3.11', '--compile-bytecode', '--index-url', 'http://x/simple']);
    expect(a.lockMode).toBe('locked');
    expect(a.json).toBe(true);
    expect(a.offline).toBe(true);
    expect(a.syncArgs).toEqual(['--no-dev', '--python', '3.11', '--offline', '--extra=fast', '-p3.11', '--index-url', 'http://x/simple']);
    expect(a.lockArgs).toEqual(['--python', '3.11', '--offline', '-p3.11', '--index-url', 'http://x/simple']);
    expect(a.fingerprint).toEqual(['--no-dev', '--python', '3.11', '--extra=fast', '-p3.11', '--index-url', 'http://x/simple']);
    expect(parseSyncArgs(['--frozen']).lockMode).toBe('frozen');
    expect(parseSyncArgs(['--dry-run']).delegate).toBe(true);
    expect(parseSyncArgs(['--reinstall']).forceFull).toBe(true);
    expect(parseSyncArgs(['--upgrade']).fingerprint).toEqual([]);
    expect(parseSyncArgs(['--directory', 'sub', '--project', 'p'])).toMatchObject({ directory: 'sub', project: 'p' });
  });

  test('--projection is velo\'s: never passed to uv, never part of what uv is asked', () => {
    const a = parseSyncArgs(['--dry-run', '--projection', 'mount', '--no-dev', '--json', '--projection=link']);
    expect(a.projection).toBe('link');
    expect(a.forUv).toEqual(['--dry-run', '--no-dev']);
    expect(a.syncArgs).toEqual(['--no-dev']);
    expect(a.lockArgs).toEqual([]);
    expect(a.fingerprint).toEqual(['--no-dev']);
    expect(parseSyncArgs([]).projection).toBeUndefined();
    expect(() => parseSyncArgs(['--projection', 'fuse'])).toThrow('--projection must be link or mount');
  });

  test.each([['--inexact'], ['--active'], ['--script'], ['--python-platform'], ['--output-format']])('refuses %s', (flag) => {
    expect(() => parseSyncArgs([flag, 'x'])).toThrow(/velo uv sync does not take/);
  });

  test('catches contradictions and missing values', () => {
    expect(() => parseSyncArgs(['--locked', '--frozen'])).toThrow('--locked and --frozen cannot be used together');
    expect(() => parseSyncArgs(['--python'])).toThrow('--python needs a value');
  });
});

describe('the environment key', () => {
  const tmp = tempDirs('velo-uv-key-');

  test('changes with what decides the environment, not with how it is projected', () => {
    const dir = tmp();
    const proj = join(dir, 'p');
    mkdirSync(proj);
    writeFileSync(join(proj, 'pyproject.toml'), '[project]\nname = "p"\n');
    writeFileSync(join(proj, 'uv.lock'), 'version = 1\n');
    const uv = join(dir, 'uv');
    writeFileSync(uv, '#!/bin/sh\n');
    const k: EnvKeyInput = {
      projectDir: proj,
      workspaceDir: proj,
      envDir: join(proj, '.venv'),
      lockPath: join(proj, 'uv.lock'),
      args: ['--no-dev'],
      env: { PATH: '/usr/bin', UV_INDEX_URL: 'http://a/simple' },
      uvPath: uv,
    };
    const base = envKey(k);
    expect(base).toMatch(/^uv-env:[0-9a-f]{48}$/);
    expect(envKey({ ...k })).toBe(base);
    // how velo projects, and settings that do not change what is installed
    expect(envKey({ ...k, env: { ...k.env, VELO_PROJECTION: 'mount', VELO_METHOD: 'copy', UV_CACHE_DIR: '/c', UV_OFFLINE: '1' } })).toBe(base);
    // what does
    expect(envKey({ ...k, args: [] })).not.toBe(base);
    expect(envKey({ ...k, env: { ...k.env, UV_INDEX_URL: 'http://b/simple' } })).not.toBe(base);
    expect(envKey({ ...k, env: { ...k.env, PATH: '/opt/python/bin:/usr/bin' } })).not.toBe(base);
    expect(envKey({ ...k, envDir: join(proj, 'env') })).not.toBe(base);
    writeFileSync(join(proj, 'uv.lock'), 'version = 1\nrevision = 3\n');
    const relocked = envKey(k);
    expect(relocked).not.toBe(base);
    writeFileSync(join(proj, '.python-version'), '3.12\n');
    expect(envKey(k)).not.toBe(relocked);
  });
});
