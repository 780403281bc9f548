/**
 * Whole-project reuse. After an install, velo records under a project key
 * — the digest of every input that decides the result (lockfile,
 * package.json, .npmrc files, npm_config_* environment, arguments,
 * platform, Node ABI, npm and velo versions), but not the project's path —
 * a manifest: the tree of each node_modules directory, the hidden lockfile,
 * and the package keys it uses. Another project (or this one after
 * `rm -rf node_modules`) with the same inputs is then laid out from the
 * manifest without loading npm's libraries or planning anything.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { objectLooksIntact } from '../store/commitObject.js';
import { resolve } from 'node:path';
import { getKey, setKey } from '../store/keys.js';
import { putTree, readTree } from '../store/trees.js';
import { writeBufferToStore } from '../store/writeBufferToStore.js';
import type { Store } from '../store/store.js';
import { inputsDigest } from './state.js';

export interface ProjectManifest {
  version: 1;
  /** node_modules dir (relative) → tree */
  dirs: Record<string, string>;
  /** digest of node_modules/.package-lock.json's bytes */
  hiddenLockfile: string;
  /** package and built keys the trees are made of (kept alive by gc with the project) */
  keys: string[];
  /** workspace package.json files (relative) → sha256 of their bytes */
  extraInputs: Record<string, string>;
  packages: number;
}

export function projectKey(root: string, fingerprintArgs: string[], env: NodeJS.ProcessEnv, versions: string, ignoreEnv?: (name: string) => boolean): string {
  return `npm-project:${inputsDigest(root, fingerprintArgs, [], env, versions, ignoreEnv)}`;
}

function sha256(path: string): string {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch {
    return '<absent>';
  }
}

export function hashExtraInputs(root: string, rels: string[]): Record<string, string> {
  return Object.fromEntries(rels.map((rel) => [rel, sha256(resolve(root, rel))]));
}

/** The workspace package.json files of this checkout are those a manifest was made with. */
export function extraInputsMatch(root: string, extraInputs: Record<string, string>): boolean {
  return Object.entries(extraInputs).every(([rel, digest]) => sha256(resolve(root, rel)) === digest);
}

export function saveManifest(store: Store, key: string, m: Omit<ProjectManifest, 'version'>): void {
  const obj = writeBufferToStore(store, Buffer.from(JSON.stringify({ version: 1, ...m })), false);
  store.flushCounters();
  // the hidden lockfile is an entry of the tree too, so gc keeps its object alive
  const hidden = readFileSync(store.objectPath(m.hiddenLockfile, false));
  const tree = putTree(store, [
    { path: 'manifest.json', kind: 'file', size: obj.size, digest: obj.digest },
    { path: 'package-lock.json', kind: 'file', size: hidden.length, digest: m.hiddenLockfile },
  ]);
  setKey(store, key, tree, { kind: 'npm-project', files: 1, logicalBytes: obj.size });
}

/** The manifest for this key, if there is one whose workspace inputs still match. */
export function loadManifest(store: Store, key: string, root: string): ProjectManifest | undefined {
  const tree = getKey(store, key);
  if (!tree) return undefined;
  try {
    const entry = readTree(store, tree).entries.find((e) => e.path === 'manifest.json');
    if (!entry) return undefined;
    const m = JSON.parse(readFileSync(store.objectPath(entry.digest, false), 'utf8')) as ProjectManifest;
    if (m.version !== 1) return undefined;
    if (!objectLooksIntact(store.objectPath(m.hiddenLockfile, false), statSync(store.objectPath(m.hiddenLockfile, false)).size)) return undefined;
    return extraInputsMatch(root, m.extraInputs) ? m : undefined;
  } catch {
    return undefined;
  }
}
