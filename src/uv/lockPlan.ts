/**
 * What `uv sync` would install, read from uv.lock without uv: start at the
 * project's own package, follow its dependencies, the extras and dependency
 * groups the arguments select (uv's defaults: the `dev` group, or
 * `tool.uv.default-groups`), and every edge whose marker holds for this
 * interpreter. Answers only when it can answer exactly as uv would: a
 * workspace, a local dependency, a conflict marker, an argument it does not
 * model, … give a reason instead, and uv plans as before.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseToml, type TomlTable, type TomlValue } from 'smol-toml';
import { evaluateMarker, MarkerUnsupported, satisfiesSpecifiers, type MarkerEnvironment } from './markers.js';
import { tokenize } from './syncArgs.js';
import { isShareable, type LockDependency, type LockPackage, type UvLock } from './uvLock.js';

/** projectName: normalized, as uv names the venv's prompt */
export type LockPlan = { packages: LockPackage[]; projectName: string } | { unsupported: string };

/** Arguments that do not change which distributions are installed (or that velo handles itself). */
const NEUTRAL = new Set([
  '--locked', '--frozen', '--offline', '--quiet', '-q', '--verbose', '-v', '--color', '--no-progress', '--cache-dir', '--no-cache', '-n',
  '--native-tls', '--allow-insecure-host', '--system-certs', '--keyring-provider', '--link-mode', '--compile-bytecode', '--directory',
  '--project', '--json', '--projection', '--reinstall', '--python', '-p', '--no-python-downloads', '--python-preference', '--managed-python',
  '--no-managed-python', '--index', '--default-index', '--index-url', '-i', '--extra-index-url', '--find-links', '-f', '--index-strategy',
  '--no-index', '--dev',
]);

interface Selection {
  extras: Set<string>;
  allExtras: boolean;
  noExtras: Set<string>;
  groups: Set<string>;
  noGroups: Set<string>;
  allGroups: boolean;
  noDefaultGroups: boolean;
  onlyGroups: Set<string>;
  noInstallProject: boolean;
  noInstall: Set<string>;
}

function selectionOf(argv: string[]): Selection | string {
  const s: Selection = {
    extras: new Set(),
    allExtras: false,
    noExtras: new Set(),
    groups: new Set(),
    noGroups: new Set(),
    allGroups: false,
    noDefaultGroups: false,
    onlyGroups: new Set(),
    noInstallProject: false,
    noInstall: new Set(),
  };
  for (const t of tokenize(argv)) {
    const v = t.value ?? '';
    switch (t.name) {
      case '--extra':
        s.extras.add(v);
        break;
      case '--all-extras':
        s.allExtras = true;
        break;
      case '--no-extra':
        s.noExtras.add(v);
        break;
      case '--group':
        s.groups.add(v);
        break;
      case '--no-group':
        s.noGroups.add(v);
        break;
      case '--no-dev':
        s.noGroups.add('dev');
        break;
      case '--all-groups':
        s.allGroups = true;
        break;
      case '--no-default-groups':
        s.noDefaultGroups = true;
        break;
      case '--only-group':
        s.onlyGroups.add(v);
        break;
      case '--only-dev':
        s.onlyGroups.add('dev');
        break;
      case '--no-install-project':
      case '--no-install-workspace':
      case '--no-install-local':
        s.noInstallProject = true;
        break;
      case '--no-install-package':
        s.noInstall.add(v);
        break;
      default:
        if (!NEUTRAL.has(t.name)) return `velo does not plan ${t.name} itself`;
    }
  }
  return s;
}

function isTable(v: TomlValue | undefined): v is TomlTable {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** `tool.uv.default-groups` of the project, or ['dev'] (uv's default). */
function defaultGroups(pyproject: TomlTable, all: string[]): string[] | string {
  const tool = pyproject.tool;
  const uv = isTable(tool) ? tool.uv : undefined;
  const dg = isTable(uv) ? uv['default-groups'] : undefined;
  if (dg === undefined) return ['dev'];
  if (dg === 'all') return all;
  if (Array.isArray(dg) && dg.every((g) => typeof g === 'string')) return dg as string[];
  return 'tool.uv.default-groups is not a list velo reads';
}

export const normalizeProjectName = (n: string): string => n.toLowerCase().replace(/[-_.]+/g, '-');

export function planFromLock(lock: UvLock, projectDir: string, workspaceDir: string, argv: string[], markers: MarkerEnvironment): LockPlan {
  if (projectDir !== workspaceDir) return { unsupported: 'a workspace member, not the workspace root' };
  if (lock.members.length > 1) return { unsupported: 'a workspace with several members' };
  const sel = selectionOf(argv);
  if (typeof sel === 'string') return { unsupported: sel };
  let pyproject: TomlTable;
  try {
    pyproject = parseToml(readFileSync(join(projectDir, 'pyproject.toml'), 'utf8'));
  } catch {
    return { unsupported: 'pyproject.toml does not parse' };
  }
  const project = pyproject.project;
  const rawName = isTable(project) && typeof project.name === 'string' ? project.name : undefined;
  if (!rawName) return { unsupported: 'pyproject.toml has no project name' };
  const rootName = normalizeProjectName(rawName);
  const roots = lock.packages.filter((p) => p.name === rootName && !isShareable(p.source) && p.source.value === '.');
  if (roots.length !== 1) return { unsupported: `uv.lock has no single entry for the project ${rootName}` };
  const root = roots[0]!;
  if (lock.requiresPython) {
    try {
      if (!satisfiesSpecifiers(markers.python_full_version, lock.requiresPython)) return { unsupported: `Python ${markers.python_full_version} is outside requires-python ${lock.requiresPython}` };
    } catch {
      return { unsupported: `cannot read requires-python ${lock.requiresPython}` };
    }
  }

  // what the project contributes: its dependencies and extras, and its groups
  const allGroups = Object.keys(root.devDependencies);
  const defaults = defaultGroups(pyproject, allGroups);
  if (typeof defaults === 'string') return { unsupported: defaults };
  const groups = new Set<string>();
  const only = sel.onlyGroups.size > 0;
  if (only) for (const g of sel.onlyGroups) groups.add(g);
  else {
    if (!sel.noDefaultGroups) for (const g of defaults) groups.add(g);
    for (const g of sel.groups) groups.add(g);
    if (sel.allGroups) for (const g of allGroups) groups.add(g);
  }
  for (const g of sel.noGroups) groups.delete(g);
  const extras = new Set(sel.allExtras ? Object.keys(root.optionalDependencies) : sel.extras);
  for (const e of sel.noExtras) extras.delete(e);
  for (const g of groups) if (!root.devDependencies[g] && (sel.groups.has(g) || sel.onlyGroups.has(g))) return { unsupported: `the group ${g} is not in uv.lock (uv says so)` };
  for (const e of extras) if (!root.optionalDependencies[e]) return { unsupported: `the extra ${e} is not in uv.lock (uv says so)` };

  const byName = new Map<string, LockPackage[]>();
  for (const p of lock.packages) byName.set(p.name, [...(byName.get(p.name) ?? []), p]);
  const target = (d: LockDependency): LockPackage | string => {
    let c = byName.get(d.name) ?? [];
    if (d.version !== undefined) c = c.filter((p) => p.version === d.version);
    if (d.source) c = c.filter((p) => p.source.kind === d.source!.kind && p.source.value === d.source!.value);
    return c.length === 1 ? c[0]! : `uv.lock has ${c.length} entries for the dependency ${d.name}`;
  };

  const install = new Set<LockPackage>();
  const seen = new Set<string>();
  const queue: { pkg: LockPackage; extras: string[] }[] = [];
  const follow = (edges: LockDependency[]): string | undefined => {
    for (const d of edges) {
      try {
        if (d.marker !== undefined && !evaluateMarker(d.marker, markers)) continue;
      } catch (err) {
        if (err instanceof MarkerUnsupported) return err.message;
        throw err;
      }
      const t = target(d);
      if (typeof t === 'string') return t;
      queue.push({ pkg: t, extras: d.extra });
    }
    return undefined;
  };
  let problem = only ? undefined : follow(root.dependencies);
  if (!only) for (const e of extras) problem ??= follow(root.optionalDependencies[e]!);
  for (const g of groups) problem ??= follow(root.devDependencies[g] ?? []);
  while (!problem && queue.length > 0) {
    const { pkg, extras: ex } = queue.shift()!;
    const id = `${pkg.name}==${pkg.version}@${pkg.source.kind}:${pkg.source.value}`;
    if (!seen.has(id)) {
      seen.add(id);
      if (pkg === root) {
        if (!sel.noInstallProject && root.source.kind !== 'virtual') return { unsupported: 'the project is installed itself' };
      } else {
        if (!isShareable(pkg.source)) return { unsupported: `${pkg.name} comes from a local source (${pkg.source.kind})` };
        if (!sel.noInstall.has(pkg.name)) install.add(pkg);
      }
      problem = follow(pkg.dependencies);
    }
    for (const e of ex) {
      if (seen.has(`${id}[${e}]`)) continue;
      seen.add(`${id}[${e}]`);
      const edges = pkg.optionalDependencies[e];
      if (edges) problem ??= follow(edges);
    }
  }
  if (problem) return { unsupported: problem };
  if (root.source.kind !== 'virtual' && !sel.noInstallProject && !only) return { unsupported: 'the project is installed itself' };
  return { packages: [...install].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)), projectName: rootName };
}
