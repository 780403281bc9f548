/**
 * A distribution in the store: one tree per package key.
 *
 *   env/<path>               shared files, laid out from the environment root
 *                            (lib/pythonX.Y/site-packages/…, include/…, share/…,
 *                            bin/<binaries>) ; bytecode grows under a key of its
 *                            own (bytecodeKey.ts), added by loadDistribution
 *                            (older stores also hold .pyc files here)
 *   velo/dist.json           what the rest means (below)
 *   velo/RECORD              RECORD as installed; rewritten per environment
 *   velo/launchers/<path>    launcher bodies, without their shebang
 *   velo/per-env/<path>      INSTALLER, REQUESTED, direct_url.json
 *
 * Only env/ is projected; velo/ is read to write the per-environment files.
 */
import { readFileSync } from 'node:fs';
import { VeloError } from '../errors.js';
import { setKey } from '../store/keys.js';
import { putTree, readTree } from '../store/trees.js';
import type { TreeEntry } from '../store/treeFormat.js';
import type { Store } from '../store/store.js';
import { writeBufferToStore } from '../store/writeBufferToStore.js';
import { addFile } from '../store/addFile.js';
import { bytecodeEntries, loadBytecode } from './bytecodeKey.js';
import { DIST_LAYOUT } from './distKey.js';
import type { InstalledDistribution } from './installedDistribution.js';

export interface DistManifest {
  layout: string;
  key: string;
  name: string;
  version: string;
  distInfo: string;
  recordRel: string;
  sitePackages: string;
  launchers: { rel: string; recordPath: string; exec: boolean }[];
  perEnv: { rel: string; exec: boolean }[];
  pycs: number;
}

export interface StoredDistribution {
  manifest: DistManifest;
  tree: string;
  /** the shared files, paths relative to the environment root */
  shared: TreeEntry[];
  /** RECORD as installed: its object (given to an environment as it is when no launcher's hash changes) */
  record: { digest: string; size: number };
  /** RECORD's text, read when a launcher's row must be rewritten */
  readRecordText: () => string;
  launchers: { rel: string; recordPath: string; exec: boolean; body: Buffer; digest: string; size: number }[];
  /** INSTALLER, REQUESTED, direct_url.json: their objects, given to each environment as its own copies */
  perEnv: { rel: string; exec: boolean; digest: string; size: number }[];
}

export interface StoreDistributionResult {
  tree: string;
  files: number;
  bytes: number;
  newObjects: number;
  newBytes: number;
}

/**
 * Put an installed, checked distribution in the store under `key` (its
 * bytecode goes under a key of its own: distBytecode.ts).
 */
export async function storeDistribution(
  store: Store,
  key: string,
  dist: InstalledDistribution,
  sitePackages: string,
): Promise<StoreDistributionResult> {
  const entries: TreeEntry[] = [];
  const r: StoreDistributionResult = { tree: '', files: 0, bytes: 0, newObjects: 0, newBytes: 0 };
  const note = (added: { size: number; created: boolean }): void => {
    r.files++;
    r.bytes += added.size;
    if (added.created) {
      r.newObjects++;
      r.newBytes += added.size;
    }
  };
  const manifest: DistManifest = {
    layout: DIST_LAYOUT,
    key,
    name: dist.name,
    version: dist.version,
    distInfo: dist.distInfo,
    recordRel: dist.recordRel,
    sitePackages,
    launchers: [],
    perEnv: [],
    pycs: 0,
  };
  try {
    for (const f of dist.files) {
      if (f.role === 'launcher') {
        const added = writeBufferToStore(store, f.body!, f.exec);
        note(added);
        entries.push({ path: `velo/launchers/${f.rel}`, kind: 'file', exec: f.exec, size: added.size, digest: added.digest });
        manifest.launchers.push({ rel: f.rel, recordPath: f.recordPath, exec: f.exec });
      } else if (f.role === 'per-env') {
        const added = writeBufferToStore(store, readFileSync(f.abs), f.exec);
        note(added);
        entries.push({ path: `velo/per-env/${f.rel}`, kind: 'file', exec: f.exec, size: added.size, digest: added.digest });
        manifest.perEnv.push({ rel: f.rel, exec: f.exec });
      } else {
        const added = await addFile(store, f.abs, f.exec, f.size);
        note(added);
        entries.push({ path: `env/${f.rel}`, kind: 'file', exec: f.exec, size: added.size, digest: added.digest });
      }
    }
    const record = writeBufferToStore(store, Buffer.from(dist.recordText), false);
    note(record);
    entries.push({ path: 'velo/RECORD', kind: 'file', exec: false, size: record.size, digest: record.digest });
    const meta = writeBufferToStore(store, Buffer.from(JSON.stringify(manifest)), false);
    note(meta);
    entries.push({ path: 'velo/dist.json', kind: 'file', exec: false, size: meta.size, digest: meta.digest });
  } finally {
    store.flushCounters();
  }
  r.tree = putTree(store, entries);
  setKey(store, key, r.tree, { kind: 'uv', logicalBytes: r.bytes, files: r.files });
  return r;
}

function readObject(store: Store, digest: string, exec: boolean, size: number, what: string): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(store.objectPath(digest, exec));
  } catch (err) {
    throw new VeloError('CORRUPT_OBJECT', `${what}: its object ${digest} is missing from the store`, {
      cause: err,
      hint: 'run velo verify --repair, then sync again',
    });
  }
  if (data.length !== size) throw new VeloError('CORRUPT_OBJECT', `${what}: its object ${digest} has the wrong size`, { hint: 'run velo verify --repair' });
  return data;
}

/**
 * Read a stored distribution back: the tree plus its per-environment parts,
 * with its bytecode from its `uv-pyc:` key — or from `bytecodeTree`, a tree
 * whose key is not set (a lazy fill from the remote).
 */
export function loadDistribution(store: Store, tree: string, bytecodeTree?: string): StoredDistribution {
  const parsed = readTree(store, tree);
  const byPath = new Map(parsed.entries.map((e) => [e.path, e]));
  const metaEntry = byPath.get('velo/dist.json');
  const recordEntry = byPath.get('velo/RECORD');
  if (!metaEntry || !recordEntry) throw new VeloError('CORRUPT_TREE', `tree ${tree} is not a velo uv distribution (no velo/dist.json)`);
  const manifest = JSON.parse(readObject(store, metaEntry.digest, metaEntry.exec, metaEntry.size, `tree ${tree}`).toString('utf8')) as DistManifest;
  if (manifest.layout !== DIST_LAYOUT) throw new VeloError('CORRUPT_TREE', `tree ${tree} has layout ${manifest.layout}, expected ${DIST_LAYOUT}`);
  const label = `${manifest.name} ${manifest.version}`;
  const shared: TreeEntry[] = [];
  for (const e of parsed.entries) {
    if (e.kind !== 'file' || !e.path.startsWith('env/')) continue;
    shared.push({ path: e.path.slice(4), kind: 'file', exec: e.exec, size: e.size, digest: e.digest });
  }
  // the bytecode compiled for it since (bytecodeKey.ts): shared like the rest
  const own = new Set(shared.map((e) => e.path));
  const bytecode = bytecodeTree ? bytecodeEntries(store, bytecodeTree) : loadBytecode(store, manifest.key);
  for (const e of bytecode) {
    if (own.has(e.path)) continue;
    shared.push({ path: e.path, kind: 'file', exec: false, size: e.size, digest: e.digest });
    manifest.pycs++;
  }
  const launchers = manifest.launchers.map((l) => {
    const e = byPath.get(`velo/launchers/${l.rel}`);
    if (!e) throw new VeloError('CORRUPT_TREE', `${label}: launcher ${l.rel} is missing from tree ${tree}`);
    return { ...l, body: readObject(store, e.digest, e.exec, e.size, label), digest: e.digest, size: e.size };
  });
  const perEnv = manifest.perEnv.map((p) => {
    const e = byPath.get(`velo/per-env/${p.rel}`);
    if (!e || e.kind !== 'file' || e.exec !== p.exec) throw new VeloError('CORRUPT_TREE', `${label}: ${p.rel} is missing from tree ${tree}`);
    return { ...p, digest: e.digest, size: e.size };
  });
  if (recordEntry.kind !== 'file' || recordEntry.exec) throw new VeloError('CORRUPT_TREE', `${label}: velo/RECORD in tree ${tree} is not a plain file`);
  const readRecordText = (): string => readObject(store, recordEntry.digest, recordEntry.exec, recordEntry.size, label).toString('utf8');
  return { manifest, tree, shared, record: { digest: recordEntry.digest, size: recordEntry.size }, readRecordText, launchers, perEnv };
}
