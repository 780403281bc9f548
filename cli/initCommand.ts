/**
 * velo init [dir] — set a project up for velo: detect its ecosystems, write
 * velo.json (for the team to commit), register the project with the store,
 * and say what `velo run` will do. Running it again changes nothing.
 */
import { join, resolve } from 'node:path';
import { VeloError } from '../src/errors.js';
import { LINK_METHODS, PROJECTIONS, loadConfig, type LinkMethod, type Projection } from '../src/config.js';
import { detectEcosystems, type Detection } from '../src/project/detect.js';
import {
  PROJECT_CONFIG_FILE,
  asConfigOverrides,
  defaultProjectConfig,
  readProjectConfig,
  writeProjectConfig,
  type ProjectConfig,
} from '../src/project/projectConfig.js';
import { compileCacheDir } from '../src/project/runEnv.js';
import { openStoreAt } from './storeContext.js';
import { listProjects, registerProject, type ProjectRecord } from '../src/store/keys.js';
import { putTree } from '../src/store/trees.js';
import { INIT_ECOSYSTEM } from '../src/store/projectStats.js';
import { flag, parse, str } from './args.js';
import { displayPath } from '../src/ui/format.js';
import { json, out, type Io } from './io.js';
import { UV_SYNC_WIRED } from './runCommand.js';

const USAGE = `Usage: velo init [dir] [--projection link|mount] [--method M] [--json]

Sets up the project in dir (default: the current directory) for velo:
  - detects its ecosystems: npm (package.json, with workspaces), uv
    (pyproject.toml, uv.lock) and cargo (Cargo.toml, with a workspace) —
    several at once is fine;
  - writes velo.json, a small documented file for your team to commit
    (ecosystems, projection, link method, Node compile cache);
  - registers the project with the store (velo dashboard lists it; velo gc
    keeps what it uses);
  - prints what it found and what \`velo run <cmd>\` will do.

Running it again changes nothing: it re-detects the ecosystems and keeps
every other setting in velo.json. Every velo command also works without it.

  --projection P   link (default) or mount
  --method M       auto (default), reflink, hardlink, copy
  --json           print what was found and done as JSON`;

export interface EcosystemReport {
  detection: Detection;
  /** the tree velo last installed for it here, if any */
  installed: { path: string; tree: string; packages: number; files: number; logicalBytes: number; method: string } | undefined;
  /** what velo run does for it */
  run: string;
}

function installedRow(rows: ProjectRecord[], dir: string, d: Detection): ProjectRecord | undefined {
  const path = d.ecosystem === 'npm' ? join(dir, 'node_modules') : d.ecosystem === 'uv' ? resolve(dir, d.envDir) : dir;
  return rows.find((r) => r.ecosystem === d.ecosystem && r.path === path);
}

/** What `velo run` does for one ecosystem, in a sentence. */
export function runPlan(d: Detection, uvWired: boolean): string {
  if (d.ecosystem === 'npm') {
    if (!d.lockfile) return 'no package-lock.json yet: velo run leaves node_modules as it is (velo npm install creates the lockfile); node_modules/.bin goes first on PATH';
    return `installs node_modules from ${d.lockfile} through the store, as velo npm ci does (a no-op when nothing changed)${d.workspaceDirs.length ? `, workspaces included (${d.workspaceDirs.length})` : ''}; node_modules/.bin goes first on PATH`;
  }
  if (d.ecosystem === 'uv') {
    const sync = uvWired ? `syncs ${d.envDir} through the store first (velo uv sync)` : `does not sync ${d.envDir} (velo uv is not wired into velo yet: run uv sync)`;
    return `${sync}; activates it when it exists (VIRTUAL_ENV, ${d.envDir}/bin first on PATH)`;
  }
  return 'nothing before the command: cargo runs when you run it (velo cargo build|check|test restores target/ from the store)';
}

export async function run(argv: string[], io: Io): Promise<number> {
  const p = parse(argv, { projection: { type: 'string' }, method: { type: 'string' }, json: { type: 'boolean' } }, USAGE);
  if (p.help) return out(io, USAGE), 0;
  if (p.positionals.length > 1) throw new VeloError('USAGE', `velo init takes at most one directory\n\n${USAGE}`);
  const dir = resolve(io.cwd, p.positionals[0] ?? '.');
  const projection = str(p, 'projection');
  if (projection !== undefined && !(PROJECTIONS as readonly string[]).includes(projection)) {
    throw new VeloError('USAGE', `--projection must be one of ${PROJECTIONS.join(', ')}`);
  }
  const method = str(p, 'method');
  if (method !== undefined && !(LINK_METHODS as readonly string[]).includes(method)) throw new VeloError('USAGE', `--method must be one of ${LINK_METHODS.join(', ')}`);

  const detections = detectEcosystems(dir, io.env);
  if (detections.length === 0) {
    throw new VeloError('NOT_FOUND', `found no project in ${dir}: no package.json, pyproject.toml or Cargo.toml`, {
      hint: 'run velo init in the directory that holds your package.json, pyproject.toml or Cargo.toml',
    });
  }
  const existing = readProjectConfig(dir);
  const cfgFile: ProjectConfig = {
    ...(existing ?? defaultProjectConfig([])),
    ecosystems: detections.map((d) => d.ecosystem),
    ...(projection ? { projection: projection as Projection } : {}),
    ...(method ? { method: method as LinkMethod } : {}),
  };
  const written = writeProjectConfig(dir, cfgFile);
  const cfg = loadConfig(io.env, asConfigOverrides(cfgFile));

  const store = openStoreAt(cfg.home, io);
  let registered: 'added' | 'updated' | 'unchanged';
  let rows: ProjectRecord[];
  try {
    rows = listProjects(store);
    const mark = rows.find((r) => r.path === dir && r.ecosystem === INIT_ECOSYSTEM);
    if (mark && mark.method === cfgFile.method && mark.projection === cfgFile.projection) registered = 'unchanged';
    else {
      // the empty tree: a marker that keeps nothing alive in gc and verifies as sound
      const empty = putTree(store, []);
      registerProject(store, { path: dir, ecosystem: INIT_ECOSYSTEM, tree: empty, method: cfgFile.method, projection: cfgFile.projection });
      registered = mark ? 'updated' : 'added';
    }
  } finally {
    store.close();
  }

  const uvWired = UV_SYNC_WIRED;
  const ecosystems: EcosystemReport[] = detections.map((d) => {
    const row = installedRow(rows, dir, d);
    return {
      detection: d,
      installed: row ? { path: row.path, tree: row.tree, packages: row.packages, files: row.files, logicalBytes: row.logicalBytes, method: row.method } : undefined,
      run: runPlan(d, uvWired),
    };
  });
  const compileCache = cfgFile.compileCache ? (io.env.NODE_COMPILE_CACHE !== undefined ? 'yours (NODE_COMPILE_CACHE is set)' : compileCacheDir(cfg.home)) : 'off';

  if (flag(p, 'json')) {
    json(io, {
      dir,
      config: { path: written.path, changed: written.changed, created: written.created, settings: { ...cfgFile, extra: undefined, ...cfgFile.extra } },
      store: { home: cfg.home, registered },
      ecosystems: ecosystems.map((e) => ({ ...e.detection, installed: e.installed ?? null, run: e.run })),
      compileCache,
    });
    return 0;
  }
  const lines: string[] = [];
  lines.push(`velo init: ${displayPath(dir)}`);
  for (const e of ecosystems) lines.push(`  found ${describe(e.detection)}${e.installed ? `; installed by velo (${e.installed.packages} packages, tree ${e.installed.tree.slice(0, 12)})` : ''}`);
  lines.push(
    `  ${written.created ? 'wrote' : written.changed ? 'updated' : 'kept'} ${PROJECT_CONFIG_FILE} (projection ${cfgFile.projection}, method ${cfgFile.method}${written.created ? '; commit it' : ''})`,
  );
  lines.push(`  ${registered === 'unchanged' ? 'already registered with' : 'registered with'} the store at ${displayPath(cfg.home)}`);
  lines.push('', 'velo run <cmd> will:');
  for (const e of ecosystems) lines.push(`  ${e.detection.ecosystem.padEnd(5)} ${e.run}`);
  lines.push(`  node  keeps Node's compile cache in ${compileCache === 'off' ? '(off in velo.json)' : compileCache}`);
  lines.push('  then run <cmd> with your stdin/stdout/stderr, signals and exit code passed through.');
  out(io, lines.join('\n'));
  return 0;
}

function describe(d: Detection): string {
  if (d.ecosystem === 'npm') {
    return `npm (package.json${d.lockfile ? `, ${d.lockfile}` : ', no lockfile'}${d.workspaceDirs.length ? `, workspaces: ${d.workspaceDirs.join(', ')}` : ''})`;
  }
  if (d.ecosystem === 'uv') {
    return `uv (pyproject.toml${d.lockfile ? ', uv.lock' : ', no uv.lock'}${d.workspaceMembers.length ? `, workspace: ${d.workspaceMembers.join(', ')}` : ''}${d.envExists ? `, ${d.envDir}` : ''})`;
  }
  return `cargo (Cargo.toml${d.lockfile ? ', Cargo.lock' : ', no Cargo.lock'}${d.workspace ? `, workspace${d.members.length ? `: ${d.members.join(', ')}` : ''}` : ''})`;
}
