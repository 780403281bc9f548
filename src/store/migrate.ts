/**
 * Store format 1 → 2: format 2 keeps every key and project also as a ref
 * file (refs.ts). Opening a format-1 store writes the refs of what its index
 * holds, then records format 2 in store.json, so a velo that does not write
 * refs refuses the store from then on instead of leaving refs behind.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './atomicWrite.js';
import { listKeys, listProjects, projectKeys } from './keys.js';
import { keyRefPath, projectRefPath, writeKeyRef, writeProjectRef } from './refs.js';
import type { Store, StoreMeta } from './store.js';

/** Write the ref of every key and project the index has and refs/ lacks. Returns how many were written. */
export function writeMissingRefs(store: Store): number {
  let written = 0;
  for (const k of listKeys(store)) {
    if (existsSync(keyRefPath(store.home, k.name))) continue;
    writeKeyRef(store, { name: k.name, tree: k.tree, kind: k.kind, logicalBytes: k.logicalBytes, files: k.files, created: k.created });
    written++;
  }
  for (const p of listProjects(store)) {
    if (existsSync(projectRefPath(store.home, p.path, p.ecosystem))) continue;
    const { path, ecosystem, tree, method, projection, logicalBytes, files, packages, updated } = p;
    writeProjectRef(store, { path, ecosystem, tree, method, projection, logicalBytes, files, packages, updated, keys: projectKeys(store, path, ecosystem) });
    written++;
  }
  return written;
}

export function writeStoreMeta(home: string, meta: StoreMeta, tmp: string): void {
  writeFileAtomic(join(home, 'store.json'), JSON.stringify(meta, null, 2) + '\n', tmp);
}

/** Format 1 → 2 (see above). Idempotent: two processes migrating at once write the same files. */
export function migrateToRefs(store: Store): StoreMeta {
  const written = writeMissingRefs(store);
  const meta: StoreMeta = { ...store.meta, format: 2 };
  writeStoreMeta(store.home, meta, store.tmpPath('store.json'));
  store.notice('migrated', `the store at ${store.home} was upgraded to format 2 (${written} ref file(s) written under refs/)`);
  return meta;
}
