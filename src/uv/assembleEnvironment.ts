/**
 * Put an environment together as one tree: the shared files of every stored
 * distribution (hardlinked by a link farm), and everything that names this
 * environment as private entries (always a copy of its own):
 *  - launchers with this environment's shebang, RECORD with their hashes,
 *    INSTALLER / REQUESTED / direct_url.json,
 *  - the distributions uv installed from local sources (the project's own
 *    editable install, path and git dependencies), copied,
 *  - the venv itself as uv created it (pyvenv.cfg, activate scripts, the
 *    python symlinks), with the scratch location replaced by this one
 *    (venvTemplate.ts).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { VeloError } from '../errors.js';
import type { Store } from '../store/store.js';
import type { TreeEntry } from '../store/treeFormat.js';
import { writeBufferToStore } from '../store/writeBufferToStore.js';
import type { InstalledDistribution } from './installedDistribution.js';
import { parseRecord, serializeRecord, withUpdatedRows } from './record.js';
import { withShebang } from './shebang.js';
import type { StoredDistribution } from './storedDistribution.js';

/**
 * How a file that names its environment is made for another one: a
 * launcher (its stored body under this environment's shebang), a RECORD
 * (the stored one with the launchers' rows rehashed), or a venv file (the
 * recorded venv, relocated).
 */
export type Remake =
  | { launcher: { digest: string; size: number } }
  | { record: { digest: string; size: number }; rows: { recordPath: string; launcher: string }[] }
  | { venv: true };

export interface PerEnvFile {
  rel: string;
  /** set on files whose bytes name the environment's path */
  remake?: Remake;
  kind: 'file' | 'symlink' | 'dir';
  /** a file's bytes, or (for bytes already in the store) its object */
  data?: Buffer;
  object?: { digest: string; size: number };
  target?: string;
  mode: number;
}

export interface EnvironmentPlan {
  /** shared with every environment that has the same distributions */
  shared: TreeEntry[];
  /** this environment's own (perEnvTreeEntries makes them private tree entries) */
  perEnv: PerEnvFile[];
  /** paths two distributions both install (the first one wins, as listed) */
  conflicts: string[];
}

export interface PlanInput {
  /** the environment's final location */
  envDir: string;
  stored: StoredDistribution[];
  /** distributions from local sources, read from the scratch environment */
  local: InstalledDistribution[];
  /** .pyc files compiled for the local distributions: rel → file */
  localPycs: Map<string, string>;
  /** the venv itself (pyvenv.cfg, python links, activate scripts, …), relocated to envDir (venvTemplate.ts) */
  venv: PerEnvFile[];
}

/** Characters that the activate scripts' quoting would need to escape. */
const UNSAFE_ENV_PATH = /['"\\$`\n\r]/;

/**
 * velo replaces the environment directory whole: refuse one that is not a
 * virtual environment (UV_PROJECT_ENVIRONMENT=/usr/local, a typo'd path).
 */
export function checkEnvTarget(envDir: string): void {
  let entries: string[];
  try {
    entries = readdirSync(envDir);
  } catch {
    return; // not there yet: velo creates it
  }
  if (entries.length > 0 && !entries.includes('pyvenv.cfg')) {
    throw new VeloError('REFUSED', `${envDir} exists and is not a virtual environment (no pyvenv.cfg); velo replaces the environment directory whole`, {
      hint: 'point UV_PROJECT_ENVIRONMENT at a virtual environment, or at a new directory',
    });
  }
}

export function checkEnvPath(envDir: string): void {
  if (UNSAFE_ENV_PATH.test(envDir)) {
    throw new VeloError('REFUSED', `velo cannot build an environment at ${JSON.stringify(envDir)}: the path contains quotes, backslashes, $ or backticks`, {
      hint: 'set UV_PROJECT_ENVIRONMENT to a plainer path, or use uv sync directly',
    });
  }
}

export function recordFor(recordText: string, launchers: Map<string, Buffer>, rel: string): PerEnvFile {
  const rows = withUpdatedRows(parseRecord(recordText), launchers);
  return { rel, kind: 'file', data: Buffer.from(serializeRecord(rows)), mode: 0o644 };
}

export function planEnvironment(input: PlanInput): EnvironmentPlan {
  const python = join(input.envDir, 'bin', 'python');
  const plan: EnvironmentPlan = { shared: [], perEnv: [], conflicts: [] };
  const taken = new Set<string>();
  const take = (rel: string): boolean => {
    if (taken.has(rel)) {
      plan.conflicts.push(rel);
      return false;
    }
    taken.add(rel);
    return true;
  };

  for (const d of input.stored) {
    for (const e of d.shared) if (take(e.path)) plan.shared.push(e);
    const launcherData = new Map<string, Buffer>();
    const rows: { recordPath: string; launcher: string }[] = [];
    for (const l of d.launchers) {
      const data = withShebang(l.body, python);
      launcherData.set(l.recordPath, data);
      rows.push({ recordPath: l.recordPath, launcher: l.rel });
      if (take(l.rel)) plan.perEnv.push({ rel: l.rel, kind: 'file', data, mode: l.exec ? 0o755 : 0o644, remake: { launcher: { digest: l.digest, size: l.size } } });
    }
    for (const p of d.perEnv) if (take(p.rel)) plan.perEnv.push({ rel: p.rel, kind: 'file', object: p, mode: p.exec ? 0o755 : 0o644 });
    if (take(d.manifest.recordRel)) {
      // RECORD names the launchers' hashes, which name this environment; without launchers it is the stored one
      plan.perEnv.push(
        launcherData.size > 0
          ? { ...recordFor(d.readRecordText(), launcherData, d.manifest.recordRel), remake: { record: d.record, rows } }
          : { rel: d.manifest.recordRel, kind: 'file', object: d.record, mode: 0o644 },
      );
    }
  }

  for (const d of input.local) {
    const launcherData = new Map<string, Buffer>();
    for (const f of d.files) {
      if (!take(f.rel)) continue;
      const mode = f.exec ? 0o755 : 0o644;
      if (f.role === 'launcher') {
        const data = withShebang(f.body!, python);
        launcherData.set(f.recordPath, data);
        plan.perEnv.push({ rel: f.rel, kind: 'file', data, mode });
      } else {
        plan.perEnv.push({ rel: f.rel, kind: 'file', data: readFileSync(f.abs), mode });
      }
    }
    if (take(d.recordRel)) plan.perEnv.push(recordFor(d.recordText, launcherData, d.recordRel));
  }
  for (const [rel, abs] of input.localPycs) {
    if (take(rel)) plan.perEnv.push({ rel, kind: 'file', data: readFileSync(abs), mode: 0o644 });
  }

  // the venv itself: what no distribution installs (a directory under a path a distribution took is skipped with it)
  const skipped: string[] = [];
  for (const f of input.venv) {
    if (skipped.some((p) => f.rel.startsWith(`${p}/`))) continue;
    if (taken.has(f.rel)) {
      skipped.push(f.rel);
      continue;
    }
    plan.perEnv.push(f);
    if (f.kind !== 'dir') taken.add(f.rel);
  }
  return plan;
}

/**
 * The per-environment files as tree entries: each file becomes a store
 * object (the same bytes in two environments are one object) marked
 * private, so every projection gives the environment its own copy — a link
 * farm copies it, a mount serves it under a writable overlay — and nothing
 * written to it can reach the store.
 */
export function perEnvTreeEntries(store: Store, files: PerEnvFile[]): TreeEntry[] {
  const out: TreeEntry[] = [];
  try {
    for (const f of files) {
      if (f.kind === 'dir') out.push({ path: f.rel, kind: 'dir' });
      else if (f.kind === 'symlink') out.push({ path: f.rel, kind: 'symlink', target: f.target! });
      else {
        const exec = (f.mode & 0o111) !== 0;
        const added = f.object ?? writeBufferToStore(store, f.data!, exec);
        out.push({ path: f.rel, kind: 'file', exec, size: added.size, digest: added.digest, private: true });
      }
    }
  } finally {
    store.flushCounters();
  }
  return out;
}
