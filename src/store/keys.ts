/**
 * Names → trees. Package keys (npm, uv), snapshot keys (cargo), and the
 * projects that were materialized, which are the GC roots.
 */
import { resolve } from 'node:path';
import { writeTransaction } from './indexDb.js';
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
  const row = store.index.prepare('SELECT tree FROM keys WHERE name = ?').get(name) as { tree: string } | undefined;
  return row?.tree;
}

/** Look up many keys at once: name → tree for those present. */
export function getKeys(store: Store, names: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const stmt = store.index.prepare('SELECT tree FROM keys WHERE name = ?');
  for (const name of names) {
    const row = stmt.get(name) as { tree: string } | undefined;
    if (row) out.set(name, row.tree);
  }
  return out;
}

export function setKey(store: Store, name: string, tree: string, info: { kind?: string; logicalBytes?: number; files?: number } = {}): void {
  const now = Date.now();
  store.index
    .prepare(
      `INSERT INTO keys(name, tree, kind, logical_bytes, files, created, used) VALUES(?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(name) DO UPDATE SET tree = excluded.tree, kind = excluded.kind,
         logical_bytes = excluded.logical_bytes, files = excluded.files, used = excluded.used`,
    )
    .run(name, tree, info.kind ?? '', info.logicalBytes ?? 0, info.files ?? 0, now, now);
}

export function deleteKey(store: Store, name: string): void {
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
  });
}

export function unregisterProject(store: Store, path: string, ecosystem?: string): void {
  const abs = resolve(path);
  writeTransaction(store.index, () => {
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
  return rows.map((r) => ({
    path: r.path,
    ecosystem: r.ecosystem,
    tree: r.tree,
    method: r.method,
    projection: r.projection,
    logicalBytes: Number(r.logical_bytes),
    files: Number(r.files),
    packages: Number(r.packages),
    updated: Number(r.updated),
  }));
}

export function projectKeys(store: Store, path: string, ecosystem: string): string[] {
  return (store.index.prepare('SELECT key FROM project_keys WHERE path = ? AND ecosystem = ?').all(resolve(path), ecosystem) as { key: string }[]).map(
    (r) => r.key,
  );
}
