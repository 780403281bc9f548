// velo init through the real binary: what it finds, the velo.json it
// writes, the row it registers, that running it twice changes nothing, and
// that the store's other commands (status, verify, gc) live with its row.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Store } from '../src/store/store.js';
import { listProjects } from '../src/store/keys.js';
import { velo } from './support/runVelo.js';
import { tempDirs } from './support/tmp.js';

const tmp = tempDirs('velo-init-cmd-');

function project(): { dir: string; home: string } {
  const root = tmp();
  const dir = join(root, 'app');
  mkdirSync(join(dir, 'packages', 'ui'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'app', workspaces: ['packages/*'] }));
  writeFileSync(join(dir, 'packages', 'ui', 'package.json'), JSON.stringify({ name: 'ui' }));
  writeFileSync(join(dir, 'Cargo.toml'), '[package]\nname = "svc"\nversion = "0.1.0"\n');
  writeFileSync(join(dir, 'pyproject.toml'), '[project]\nname = "tools"\n');
  return { dir, home: join(root, 'store') };
}

function rows(home: string): { path: string; ecosystem: string; method: string; projection: string }[] {
  const s = Store.open(home);
  try {
    return listProjects(s).map((r) => ({ path: r.path, ecosystem: r.ecosystem, method: r.method, projection: r.projection }));
  } finally {
    s.close();
  }
}

describe('velo init', () => {
  it('detects npm (with its workspace), uv and cargo, writes velo.json, registers the project, and says what velo run will do', () => {
    const { dir, home } = project();
    const r = velo(['init'], { VELO_HOME: home }, dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('found npm (package.json, no lockfile, workspaces: packages/ui)');
    expect(r.stdout).toContain('found uv (pyproject.toml, no uv.lock)');
    expect(r.stdout).toContain('found cargo (Cargo.toml, no Cargo.lock)');
    expect(r.stdout).toContain('wrote velo.json');
    expect(r.stdout).toMatch(/velo run <cmd> will:\n {2}npm .*\n {2}uv .*\n {2}cargo .*nothing before the command/);
    const cfg = JSON.parse(readFileSync(join(dir, 'velo.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg).toMatchObject({ ecosystems: ['npm', 'uv', 'cargo'], projection: 'link', method: 'auto', compileCache: true });
    expect(Array.isArray(cfg.$comment)).toBe(true);
    expect(rows(home)).toEqual([{ path: dir, ecosystem: 'init', method: 'auto', projection: 'link' }]);
  });

  it('changes nothing when run twice: the same velo.json bytes, one row', () => {
    const { dir, home } = project();
    expect(velo(['init'], { VELO_HOME: home }, dir).code).toBe(0);
    const before = readFileSync(join(dir, 'velo.json'));
    const rowsBefore = rows(home);
    const again = velo(['init', '--json'], { VELO_HOME: home }, dir);
    expect(again.code, again.stderr).toBe(0);
    const j = JSON.parse(again.stdout) as { config: { changed: boolean }; store: { registered: string } };
    expect(j.config.changed).toBe(false);
    expect(j.store.registered).toBe('unchanged');
    expect(readFileSync(join(dir, 'velo.json')).equals(before)).toBe(true);
    expect(rows(home)).toEqual(rowsBefore);
  });

  it('keeps settings a user made in velo.json, and takes --method / --projection', () => {
    const { dir, home } = project();
    expect(velo(['init'], { VELO_HOME: home }, dir).code).toBe(0);
    const cfg = JSON.parse(readFileSync(join(dir, 'velo.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'velo.json'), JSON.stringify({ ...cfg, method: 'copy', compileCache: false, owner: 'team-a' }));
    rmSync(join(dir, 'pyproject.toml'));
    const r = velo(['init'], { VELO_HOME: home }, dir);
    expect(r.code, r.stderr).toBe(0);
    const after = JSON.parse(readFileSync(join(dir, 'velo.json'), 'utf8')) as Record<string, unknown>;
    expect(after).toMatchObject({ ecosystems: ['npm', 'cargo'], method: 'copy', compileCache: false, owner: 'team-a' });
    expect(rows(home)).toEqual([{ path: dir, ecosystem: 'init', method: 'copy', projection: 'link' }]);
    expect(velo(['init', '--projection', 'mount', '--method', 'hardlink'], { VELO_HOME: home }, dir).code).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'velo.json'), 'utf8'))).toMatchObject({ projection: 'mount', method: 'hardlink' });
    expect(rows(home)).toEqual([{ path: dir, ecosystem: 'init', method: 'hardlink', projection: 'mount' }]);
  });

  it('takes a directory argument, and has --help', () => {
    const { dir, home } = project();
    const r = velo(['init', dir], { VELO_HOME: home }, tmp());
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(dir, 'velo.json'), 'utf8')).toContain('"ecosystems"');
    const h = velo(['init', '--help'], { VELO_HOME: home });
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('Usage: velo init');
  });

  it('refuses a directory with no project (exit 3, nothing written) and bad options (exit 2)', () => {
    const empty = tmp();
    const r = velo(['init'], { VELO_HOME: join(empty, 'store') }, empty);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('found no project');
    expect(() => readFileSync(join(empty, 'velo.json'))).toThrow();
    const { dir, home } = project();
    expect(velo(['init', '--method', 'symlink'], { VELO_HOME: home }, dir).code).toBe(2);
    expect(velo(['init', '--projection', 'nfs'], { VELO_HOME: home }, dir).code).toBe(2);
  });

  it('leaves verify sound and gc honest: the row keeps nothing alive, and goes when the directory does', () => {
    const { dir, home } = project();
    expect(velo(['init'], { VELO_HOME: home }, dir).code).toBe(0);
    const v = velo(['verify', '--json'], { VELO_HOME: home });
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect((JSON.parse(v.stdout) as { problems: unknown[] }).problems).toEqual([]);
    const kept = JSON.parse(velo(['gc', '--json'], { VELO_HOME: home }).stdout) as { projectsDropped: string[] };
    expect(kept.projectsDropped).toEqual([]);
    expect(rows(home)).toHaveLength(1);
    rmSync(dir, { recursive: true, force: true });
    const gone = JSON.parse(velo(['gc', '--json'], { VELO_HOME: home }).stdout) as { projectsDropped: string[] };
    expect(gone.projectsDropped).toEqual([`${dir} (init)`]);
    expect(rows(home)).toEqual([]);
  });
});
