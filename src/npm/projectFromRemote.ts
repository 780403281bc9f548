/**
 * Whole-project reuse across machines: the local manifest of projectCache.ts,
 * shared through the remote as a project record (src/remote/remoteProject.ts).
 * A machine that has never seen these install inputs reads one record
 * instead of loading npm's libraries and planning the lockfile, fills the
 * package keys it names from the remote, and lays node_modules out from
 * the manifest — or, with a lazy mount, leaves the objects in the remote.
 * Anything missing or not matching: undefined, and the install plans from
 * the lockfile as always.
 */
import { putTreeBuffer, readTreeBuffer } from '../store/trees.js';
import { getKeys } from '../store/keys.js';
import { writeBufferToStore } from '../store/writeBufferToStore.js';
import type { Store } from '../store/store.js';
import type { Remote } from '../remote/remote.js';
import type { LazyFill } from '../remote/fill.js';
import type { ProjectToPublish } from '../remote/remoteProject.js';
import { extraInputsMatch, projectKey, saveManifest, type ProjectManifest } from './projectCache.js';
import { libcFamily, REMOTE_KINDS } from './packageKey.js';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * npm settings that say where npm keeps its cache, config files and logs, or
 * how it reports — never what node_modules holds (the config files' contents
 * are inputs of their own). Each machine may place them differently.
 */
const MACHINE_LOCAL_SETTINGS = /^npm_config_(cache|userconfig|globalconfig|logs_dir|logs_max|loglevel|progress|color|audit|fund|update_notifier)$/i;

/**
 * The remote's name for these install inputs: the local project key's
 * inputs less how the tree is projected (method and projection change how
 * node_modules is put in place, not what it holds) and less the machine-local
 * settings above, plus libc, which decides optional native packages and which
 * one machine's key need not hold.
 */
export function remoteProjectName(root: string, fingerprintArgs: string[], env: NodeJS.ProcessEnv, versions: string): string {
  const args = fingerprintArgs.filter((a) => !/^(method|projection)=/.test(a));
  const { VELO_PROJECTION: _projection, VELO_METHOD: _method, ...rest } = env;
  return `${projectKey(root, args, rest, versions, (k) => MACHINE_LOCAL_SETTINGS.test(k))}:${libcFamily()}`;
}

export interface RemoteManifest {
  manifest: ProjectManifest;
  /** objects left in the remote for a lazy mount (undefined: every object is in the store) */
  lazy?: LazyFill;
}

/**
 * The manifest the remote has for these inputs, its keys in the local store
 * (or, `lazy`, their trees and where their objects are); undefined when the
 * remote has none, or cannot give all of it.
 */
export async function manifestFromRemote(store: Store, remote: Remote, remoteName: string, localKey: string, root: string, lazy: boolean): Promise<RemoteManifest | undefined> {
  const record = await remote.project(remoteName);
  if (!record) return undefined;
  // a workspace's package.json differs here: the record is another project's
  if (!extraInputsMatch(root, record.extraInputs)) return undefined;
  const have = getKeys(store, record.keys);
  const lacking = record.keys.filter((k) => !have.has(k));
  let left: LazyFill | undefined;
  if (lacking.length > 0) {
    if (lazy) {
      // the mount shows the record's own trees: the packages' trees are not written (completing the fill sets them with the keys)
      const fill = await remote.fillLazy(store, lacking, REMOTE_KINDS, record.keys, false);
      if (!fill || fill.trees.size < lacking.length) return undefined;
      if (fill.missing.size === 0) {
        if ((await remote.completeLazy(store, fill)).size < lacking.length) return undefined;
      } else left = fill;
    } else if ((await remote.fill(store, lacking, REMOTE_KINDS, { bundle: record.keys })).size < lacking.length) return undefined;
  }
  for (const tree of record.trees.values()) putTreeBuffer(store, tree);
  writeBufferToStore(store, record.hidden, false, record.hiddenLockfile);
  const { name: _name, trees: _trees, hidden: _hidden, ...fields } = record;
  const manifest: ProjectManifest = { version: 1, ...fields };
  // complete here: the next install with these inputs lays out from the local manifest
  if (!left) saveManifest(store, localKey, manifest);
  store.flushCounters();
  return { manifest, ...(left ? { lazy: left } : {}) };
}

/** A manifest as a record to publish under `remoteName` (its trees and hidden lockfile read from the store only if it is needed). */
export function projectToPublish(store: Store, remoteName: string, m: ProjectManifest): ProjectToPublish {
  const { version: _version, ...fields } = m;
  return {
    name: remoteName,
    keys: m.keys,
    id: createHash('sha256').update(JSON.stringify([remoteName, fields])).digest('hex'),
    load: () => {
      try {
        return {
          ...fields,
          name: remoteName,
          trees: new Map(Object.values(m.dirs).map((d) => [d, readTreeBuffer(store, d)])),
          hidden: readFileSync(store.objectPath(m.hiddenLockfile, false)),
        };
      } catch {
        return undefined;
      }
    },
  };
}
