/**
 * Names → trees. Package keys (npm, uv), snapshot keys (cargo), and the
 * projects that were materialized, which are the GC roots.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { writeTransaction } from './indexDb.js';
import { readKeyRef, removeKeyRef, removeProjectRef, writeKeyRef, writeProjectRef, type KeyRef } from './refs.js';
import type { Store } from './store.js';

export interface KeyRecord {
  name: string;
  tree: string;
  kind: string;
  logicalBytes: number;
  files: number;
  created: number;
  used: number;
}

interface KeyRow {
  name: string;
  tree: string;
  kind: string;
  logical_bytes: number;
  files: number;
  created: number;
  used: number;
}

function toKey(row: KeyRow): KeyRecord {
  return {
    name: row.name,
    tree: row.tree,
    kind: row.kind,
    logicalBytes: Number(row.logical_bytes),
    files: Number(row.files),
    created: Number(row.created),
    used: Number(row.used),
  };
}

export function getKey(store: Store, name: string): string | undefined {
  return getKeys(store, [name]).get(name);
}

/**
 * Look up many keys at once: name → tree for those present. A key whose tree
 * is no longer in the store (a crash, a disk error, a hand-deleted file) is
 * forgotten and answered as a miss, so the caller fetches and records it
 * again. A key the index lost but refs/ still holds (a damaged or rolled-back
 * index) is put back into the index.
 */
export function getKeys(store: Store, names: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const stmt = store.index.prepare('SELECT tree FROM keys WHERE name = ?');
  let lost = 0;
  let recovered = 0;
  for (const name of names) {
    const row = stmt.get(name) as { tree: string } | undefined;
    if (row) {
      if (existsSync(store.treePath(row.tree))) out.set(name, row.tree);
      else {
        deleteKey(store, name);
        lost++;
      }
      continue;
    }
    const ref = readKeyRef(store.home, name);
    if (!ref) continue;
    if (!existsSync(store.treePath(ref.tree))) {
      removeKeyRef(store, name);
      lost++;
      continue;
    }
    insertKeyRow(store, ref.name, ref.tree, ref.kind, ref.logicalBytes, ref.files, ref.created || Date.now());
    out.set(name, ref.tree);
    recovered++;
  }
  if (lost > 0) store.notice(`keys-lost`, `${lost} cached entr${lost === 1 ? 'y names a tree' : 'ies name trees'} no longer in the store: fetching again`);
  if (recovered > 0) store.notice('keys-recovered', `${recovered} cached entr${recovered === 1 ? 'y' : 'ies'} missing from the store index restored from refs/`);
  return out;
}

function insertKeyRow(store: Store, name: string, tree: string, kind: string, logicalBytes: number, files: number, created: number): void {
  store.index
    .prepare(
      `INSERT INTO keys(name, tree, kind, logical_bytes, files, created, used) VALUES(?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(name) DO UPDATE SET tree = excluded.tree, kind = excluded.kind,
         logical_bytes = excluded.logical_bytes, files = excluded.files, used = excluded.used`,
    )
    .run(name, tree, kind, logicalBytes, files, created, Date.now());
}

type KeyInfo = { kind?: string; logicalBytes?: number; files?: number };

function keyRef(name: string, tree: string, info: KeyInfo): KeyRef {
  return { name, tree, kind: info.kind ?? '', logicalBytes: info.logicalBytes ?? 0, files: info.files ?? 0, created: Date.now() };
}

export function setKey(store: Store, name: string, tree: string, info: KeyInfo = {}): void {
  const ref = keyRef(name, tree, info);
  // the ref first: an index that misses a key the refs hold loses nothing
  writeKeyRef(store, ref);
  insertKeyRow(store, ref.name, ref.tree, ref.kind, ref.logicalBytes, ref.files, ref.created);
}

/**
 * Record many keys: each key's ref file now (the ref first, as setKey), the
 * index rows in one transaction when `flush` is called, instead of one
 * index write per key. Until then a key lives in refs/ only, which getKeys
 * already reads (a crash in between loses nothing).
 */
export class KeyBatch {
  readonly #store: Store;
  #rows: KeyRef[] = [];

  constructor(store: Store) {
    this.#store = store;
  }

  add(name: string, tree: string, info: KeyInfo = {}): void {
    const ref = keyRef(name, tree, info);
    writeKeyRef(this.#store, ref);
    this.#rows.push(ref);
  }

  flush(): void {
    const rows = this.#rows.splice(0);
    if (rows.length === 0) return;
    writeTransaction(this.#store.index, () => {
      for (const r of rows) insertKeyRow(this.#store, r.name, r.tree, r.kind, r.logicalBytes, r.files, r.created);
    });
  }
}

export function deleteKey(store: Store, name: string): void {
  removeKeyRef(store, name);
  store.index.prepare('DELETE FROM keys WHERE name = ?').run(name);
}

export function listKeys(store: Store, kind?: string): KeyRecord[] {
  const rows = (
    kind === undefined
      ? store.index.prepare('SELECT * FROM keys ORDER BY name').all()
      : store.index.prepare('SELECT * FROM keys WHERE kind = ? ORDER BY name').all(kind)
  ) as unknown as KeyRow[];
  return rows.map(toKey);
}

export interface ProjectRecord {
  path: string;
  ecosystem: string;
  tree: string;
  method: string;
  projection: string;
  logicalBytes: number;
  files: number;
  packages: number;
  updated: number;
}

export interface RegisterProject {
  path: string;
  ecosystem: string;
  tree: string;
  method?: string;
  projection?: string;
  logicalBytes?: number;
  files?: number;
  packages?: number;
  /** the package/snapshot keys this project uses: they stay alive while it does */
  keys?: string[];
}

/** Record a materialized project as a GC root (and the keys it uses). */
export function registerProject(store: Store, p: RegisterProject): void {
  const path = resolve(p.path);
  writeTransaction(store.index, () => {
    store.index
      .prepare(
        `INSERT INTO projects(path, ecosystem, tree, method, projection, logical_bytes, files, packages, updated)
         VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(path, ecosystem) DO UPDATE SET tree = excluded.tree, method = excluded.method,
           projection = excluded.projection, logical_bytes = excluded.logical_bytes, files = excluded.files,
           packages = excluded.packages, updated = excluded.updated`,
      )
      .run(path, p.ecosystem, p.tree, p.method ?? '', p.projection ?? 'link', p.logicalBytes ?? 0, p.files ?? 0, p.packages ?? 0, Date.now());
    if (p.keys) {
      store.index.prepare('DELETE FROM project_keys WHERE path = ? AND ecosystem = ?').run(path, p.ecosystem);
      const ins = store.index.prepare('INSERT OR IGNORE INTO project_keys(path, ecosystem, key) VALUES(?, ?, ?)');
      const touch = store.index.prepare('UPDATE keys SET used = ? WHERE name = ?');
      const now = Date.now();
      for (const key of p.keys) {
        ins.run(path, p.ecosystem, key);
        touch.run(now, key);
      }
    }
    saveProjectRef(store, path, p.ecosystem);
  });
}

/** Write a project's ref file from its index rows (inside the caller's write transaction). */
export function saveProjectRef(store: Store, path: string, ecosystem: string): void {
  const row = store.index.prepare('SELECT * FROM projects WHERE path = ? AND ecosystem = ?').get(path, ecosystem) as ProjectRow | undefined;
  if (!row) return removeProjectRef(store, path, ecosystem);
  writeProjectRef(store, { ...toProject(row), keys: projectKeys(store, path, ecosystem) });
}

export function unregisterProject(store: Store, path: string, ecosystem?: string): void {
  const abs = resolve(path);
  writeTransaction(store.index, () => {
    const ecosystems =
      ecosystem === undefined
        ? (store.index.prepare('SELECT ecosystem FROM projects WHERE path = ?').all(abs) as { ecosystem: string }[]).map((r) => r.ecosystem)
        : [ecosystem];
    for (const e of ecosystems) removeProjectRef(store, abs, e);
    if (ecosystem === undefined) {
      store.index.prepare('DELETE FROM projects WHERE path = ?').run(abs);
      store.index.prepare('DELETE FROM project_keys WHERE path = ?').run(abs);
    } else {
      store.index.prepare('DELETE FROM projects WHERE path = ? AND ecosystem = ?').run(abs, ecosystem);
      store.index.prepare('DELETE FROM project_keys WHERE path = ? AND ecosystem = ?').run(abs, ecosystem);
    }
  });
}

interface ProjectRow {
  path: string;
  ecosystem: string;
  tree: string;
  method: string;
  projection: string;
  logical_bytes: number;
  files: number;
  packages: number;
  updated: number;
}

export function listProjects(store: Store): ProjectRecord[] {
  const rows = store.index.prepare('SELECT * FROM projects ORDER BY path, ecosystem').all() as unknown as ProjectRow[];
  return rows.map(toProject);
}

function toProject(r: ProjectRow): ProjectRecord {
  return {
    path: r.path,
    ecosystem: r.ecosystem,
    tree: r.tree,
    method: r.method,
    projection: r.projection,
    logicalBytes: Number(r.logical_bytes),
    files: Number(r.files),
    packages: Number(r.packages),
    updated: Number(r.updated),
  };
}

export function projectKeys(store: Store, path: string, ecosystem: string): string[] {
  return (store.index.prepare('SELECT key FROM project_keys WHERE path = ? AND ecosystem = ?').all(resolve(path), ecosystem) as { key: string }[]).map(
    (r) => r.key,
  );
}
