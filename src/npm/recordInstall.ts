/**
 * Stage 5 of an install: what is kept once node_modules is in place — the
 * hidden lockfile npm reads, the whole-project manifest for the next project
 * with the same inputs, the project's registration (a GC root), the root
 * project's lifecycle scripts, and the no-op state.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { registerProject } from '../store/keys.js';
import { writeBufferToStore } from '../store/writeBufferToStore.js';
import { removeTree } from '../projection/atomicSwap.js';
import { runRootScripts } from './scripts.js';
import { hasRootScripts } from './rootScripts.js';
import { clearPending, dirStamp, inputStamps, inputsDigest, writeState } from './state.js';
import { loadNpmConfig, type AnyRecord, type LoadedNpmConfig, type UserNpm } from './userNpm.js';
import { hashExtraInputs, projectKey, saveManifest, type ProjectManifest } from './projectCache.js';
import type { Plan } from './plan.js';
import type { Aside, InstallOptions, InstallSummary } from './installTypes.js';
import type { ProjectedDir } from './projectNodeModules.js';

/** Arborist writes node_modules/.package-lock.json from the ideal tree, less what is not installed. */
export function saveHiddenLockfile(plan: Plan, omitted: Set<AnyRecord>): Promise<void> {
  const ideal = plan.idealTree;
  for (const node of [...ideal.inventory.values()] as AnyRecord[]) {
    if (!node.inert && !omitted.has(node)) continue;
    if (node.parent) node.parent = null;
    else if (node.fsParent) node.fsParent = null; // a workspace folder --workspace left out
  }
  ideal.meta.filename = join(plan.root, 'node_modules', '.package-lock.json');
  ideal.meta.hiddenLockfile = true;
  ideal.meta.lockfileVersion = 3;
  return ideal.meta.save();
}

/**
 * Record the whole result for the next project with the same inputs (see
 * projectCache.ts). Returns the manifest and its key, which the project keeps alive.
 */
export function recordProjectManifest(
  o: InstallOptions,
  root: string,
  userEnv: NodeJS.ProcessEnv,
  versions: string,
  m: { results: ProjectedDir[]; keys: string[]; extraInputs: string[]; packages: number },
): { key: string; manifest: ProjectManifest } {
  const store = o.store;
  const hidden = writeBufferToStore(store, readFileSync(join(root, 'node_modules', '.package-lock.json')), false);
  const pkey = projectKey(root, o.fingerprintArgs, userEnv, versions);
  const manifest: ProjectManifest = {
    version: 1,
    dirs: Object.fromEntries(m.results.map((r) => [r.dir, r.tree])),
    hiddenLockfile: hidden.digest,
    keys: m.keys,
    extraInputs: hashExtraInputs(root, m.extraInputs),
    packages: m.packages,
  };
  saveManifest(store, pkey, manifest);
  return { key: pkey, manifest };
}

export interface FinishInput {
  t0: number;
  userEnv: NodeJS.ProcessEnv;
  versions: string;
  asides: Aside[];
  results: ProjectedDir[];
  projectionNote: string | undefined;
  keys: string[];
  extraInputs: string[];
  packages: number;
  /** what this run fetched and built (none when laid out from a project manifest) */
  fetched?: number;
  fetchedBytes?: number;
  built?: number;
  builtFromStore?: number;
  /** bytes of files copied rather than linked (packages with install scripts) */
  privateBytes?: number;
  resolvedLockfile?: boolean;
  fromProjectCache: boolean;
  loaded?: LoadedNpmConfig;
  warnings?: string[];
  /** link locations whose build (workspace scripts) ran: the no-op runs it again */
  linkBuild?: string[];
}

/** Common end of both paths: drop the old trees, register, root scripts, no-op state. */
export async function finishInstall(o: InstallOptions, root: string, npm: UserNpm, f: FinishInput): Promise<InstallSummary> {
  const store = o.store;
  clearPending(store.home, root);
  for (const a of f.asides) if (a.aside) removeTree(a.aside, root, true);
  f.asides.length = 0;
  let files = 0;
  let bytes = 0;
  let linked = 0;
  for (const [i, r] of f.results.entries()) {
    files += r.files;
    bytes += r.bytes;
    linked += r.linked;
    registerProject(store, {
      path: join(root, r.dir),
      ecosystem: 'npm',
      tree: r.tree,
      method: r.method,
      projection: r.projection,
      logicalBytes: r.logicalBytes,
      files: r.files,
      packages: f.packages,
      keys: i === 0 ? f.keys : [],
    });
  }
  const pkgJson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as AnyRecord;
  const wantsRootScripts = hasRootScripts(pkgJson);
  const loaded = f.loaded ?? (wantsRootScripts ? await loadNpmConfig(npm, o.mode, o.npmArgs, root) : undefined);
  const rootScripts = loaded ? await runRootScripts(loaded, root, pkgJson, o.scriptStdio) : [];
  writeState(store.home, root, {
    inputs: inputsDigest(root, o.fingerprintArgs, f.extraInputs, f.userEnv, o.veloVersion),
    stamps: inputStamps(root, o.fingerprintArgs, f.extraInputs, f.userEnv, o.veloVersion),
    dirs: Object.fromEntries(f.results.map((r) => [r.dir, { tree: r.tree, ...dirStamp(join(root, r.dir)) }])),
    extraInputs: f.extraInputs,
    projection: f.results[0]?.projection ?? 'link',
    ...(f.linkBuild?.length ? { linkBuild: f.linkBuild } : {}),
  });
  const method = f.results[0]?.method ?? 'none';
  o.progress?.phase?.('done');
  return {
    root,
    packages: f.packages,
    fromStore: f.packages - (f.fetched ?? 0),
    fetched: f.fetched ?? 0,
    fetchedBytes: f.fetchedBytes ?? 0,
    built: f.built ?? 0,
    builtFromStore: f.builtFromStore ?? 0,
    filesLinked: linked,
    files,
    bytes,
    bytesSaved: method === 'copy' ? 0 : Math.max(0, bytes - (f.privateBytes ?? 0)),
    method,
    engine: f.results[0]?.engine ?? 'none',
    rootScripts,
    resolvedLockfile: f.resolvedLockfile ?? false,
    fromProjectCache: f.fromProjectCache,
    projection: f.results[0]?.projection ?? 'link',
    projectionNote: f.projectionNote,
    warnings: f.warnings ?? [],
    ms: Math.round(performance.now() - f.t0),
  };
}
