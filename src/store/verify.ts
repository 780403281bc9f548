/**
 * `velo verify`: re-hash every object and tree, check modes and mtimes, find
 * trees whose objects are missing, and recompute the counters. With repair:
 * damaged objects are quarantined, objects whose bytes are right but whose
 * mode or mtime drifted are fixed, keys whose trees can no longer be
 * materialized are dropped (the next install re-fetches those packages), a
 * damaged object is restored from an intact copy in a registered project
 * when there is one, and dead processes' temporary files are removed.
 */
import { chmodSync, existsSync, lstatSync, readdirSync, readFileSync, unlinkSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { hashBuffer, hashFile } from './hash.js';
import { OBJECT_EXEC_MODE, OBJECT_MODE, OBJECT_MTIME_MS, OBJECT_MTIME_S } from './layout.js';
import { quarantineObject } from './commitObject.js';
import { parseTree } from './treeFormat.js';
import { setCounters } from './counters.js';
import { walkStoreDir } from './walkStore.js';
import { addFile } from './addFile.js';
import { processAlive } from './lock.js';
import { deleteKey } from './keys.js';
import { keyRefPath, projectRefPath, scanKeyRefs, scanProjectRefs } from './refs.js';
import { syncIndexFromRefs } from './indexRecovery.js';
import { writeMissingRefs } from './migrate.js';
import type { Store } from './store.js';
import { readLazyRecord } from '../remote/lazyRecord.js';

export interface VerifyProblem {
  kind:
    | 'corrupt-object'
    | 'object-metadata'
    | 'malformed-name'
    | 'corrupt-tree'
    | 'missing-object'
    | 'broken-key'
    | 'broken-project'
    | 'damaged-index'
    | 'missing-ref'
    | 'unindexed-ref'
    | 'unreadable-ref';
  path: string;
  detail: string;
  repaired: boolean;
}

export interface VerifyReport {
  objects: number;
  objectBytes: number;
  trees: number;
  treeBytes: number;
  problems: VerifyProblem[];
  repaired: number;
  tmpRemoved: number;
  /**
   * Unreferenced things found incomplete — what a gc killed half-way leaves
   * (trees whose objects it already deleted, keys no project uses whose tree
   * is gone): garbage the next gc removes, not damage.
   */
  garbage: { trees: number; keys: number; projects: number };
  /** files of lazily mounted trees whose objects are still in the remote (src/remote/lazyRecord.ts): expected, not damage */
  lazyObjects: number;
}

export interface VerifyOptions {
  repair?: boolean;
  onProgress?: (done: number, what: string) => void;
}

export async function verifyStore(store: Store, options: VerifyOptions = {}): Promise<VerifyReport> {
  const repair = options.repair === true;
  const report: VerifyReport = { objects: 0, objectBytes: 0, trees: 0, treeBytes: 0, problems: [], repaired: 0, tmpRemoved: 0, garbage: { trees: 0, keys: 0, projects: 0 }, lazyObjects: 0 };
  const problem = (p: VerifyProblem): void => {
    report.problems.push(p);
    if (p.repaired) report.repaired++;
  };
  checkRefs(store, repair, problem);
  const present = new Set<string>();
  const damaged = new Map<string, { digest: string; exec: boolean }>();
  let done = 0;
  for (const f of walkStoreDir(join(store.home, 'objects'))) {
    options.onProgress?.(++done, 'objects');
    if (f.malformed) {
      problem({ kind: 'malformed-name', path: f.path, detail: 'not a store object name', repaired: false });
      continue;
    }
    const st = lstatSync(f.path);
    const actual = st.isFile() ? await hashFile(f.path, st.size) : '';
    if (actual !== f.digest) {
      let repaired = false;
      if (repair) {
        quarantineObject(store, f.path, f.digest, f.exec);
        damaged.set(f.digest + (f.exec ? 'x' : ''), { digest: f.digest, exec: f.exec });
        repaired = true;
      }
      problem({ kind: 'corrupt-object', path: f.path, detail: `content hashes to ${actual || '(not a file)'}`, repaired });
      continue;
    }
    const wantMode = f.exec ? OBJECT_EXEC_MODE : OBJECT_MODE;
    if ((st.mode & 0o7777) !== wantMode || st.mtimeMs !== OBJECT_MTIME_MS) {
      let repaired = false;
      if (repair) {
        chmodSync(f.path, wantMode);
        utimesSync(f.path, OBJECT_MTIME_S, OBJECT_MTIME_S);
        repaired = true;
      }
      problem({ kind: 'object-metadata', path: f.path, detail: `mode ${(st.mode & 0o7777).toString(8)}, mtime ${new Date(st.mtimeMs).toISOString()}`, repaired });
    }
    present.add(f.digest + (f.exec ? 'x' : ''));
    report.objects++;
    report.objectBytes += st.size;
  }
  if (damaged.size > 0) {
    for (const id of await restoreFromProjects(store, damaged)) {
      present.add(id);
      report.objects++;
      report.objectBytes += lstatSync(store.objectPath(id.slice(0, 64), id.endsWith('x'))).size;
      problem({ kind: 'corrupt-object', path: store.objectPath(id.slice(0, 64), id.endsWith('x')), detail: 'restored from an intact copy in a registered project', repaired: true });
    }
  }
  const brokenTrees = new Set<string>();
  const incompleteTrees = new Map<string, { path: string; missing: number }>();
  for (const f of walkStoreDir(join(store.home, 'trees'))) {
    options.onProgress?.(++done, 'trees');
    if (f.malformed) {
      problem({ kind: 'malformed-name', path: f.path, detail: 'not a tree name', repaired: false });
      continue;
    }
    const data = readFileSync(f.path);
    let missing = 0;
    try {
      if (hashBuffer(data) !== f.digest) throw new Error('content does not match its name');
      for (const e of parseTree(data).entries) {
        if (e.kind === 'file' && !present.has(e.digest + (e.exec ? 'x' : ''))) missing++;
      }
    } catch (err) {
      brokenTrees.add(f.digest);
      if (repair) unlinkSync(f.path);
      problem({ kind: 'corrupt-tree', path: f.path, detail: (err as Error).message, repaired: repair });
      continue;
    }
    report.trees++;
    report.treeBytes += data.length;
    if (missing > 0) {
      brokenTrees.add(f.digest);
      incompleteTrees.set(f.digest, { path: f.path, missing });
    }
  }
  const keyRows = store.index.prepare('SELECT name, tree FROM keys').all() as { name: string; tree: string }[];
  // as gc sees it: a project whose directory is gone is about to be dropped, with the keys only it used
  const projectRows = (store.index.prepare('SELECT path, ecosystem, tree, projection FROM projects').all() as { path: string; ecosystem: string; tree: string; projection: string }[]).filter((r) => {
    if (r.projection === 'mount' || existsSync(r.path)) return true;
    report.garbage.projects++;
    return false;
  });
  const usedKeys = new Set<string>();
  const keysOf = store.index.prepare('SELECT key FROM project_keys WHERE path = ? AND ecosystem = ?');
  for (const r of projectRows) for (const k of keysOf.all(r.path, r.ecosystem) as { key: string }[]) usedKeys.add(k.key);
  const referenced = new Set([...keyRows.filter((r) => usedKeys.has(r.name)).map((r) => r.tree), ...projectRows.map((r) => r.tree)]);
  for (const [digest, t] of incompleteTrees) {
    if (!referenced.has(digest)) {
      report.garbage.trees++;
      continue;
    }
    // a lazy mount's tree: objects its record names are still in the remote, fetched on first open
    const lazy = readLazyRecord(store.home, digest);
    if (lazy) {
      const named = new Set(lazy.objects.map((o) => o.digest + (o.exec ? 'x' : '')));
      const unnamed = parseTree(readFileSync(t.path)).entries.filter((e) => e.kind === 'file' && !present.has(e.digest + (e.exec ? 'x' : '')) && !named.has(e.digest + (e.exec ? 'x' : '')));
      report.lazyObjects += t.missing - unnamed.length;
      if (unnamed.length === 0) {
        brokenTrees.delete(digest);
        continue;
      }
      t.missing = unnamed.length;
    }
    problem({ kind: 'missing-object', path: t.path, detail: `${t.missing} file(s) refer to objects not in the store`, repaired: false });
  }
  for (const row of keyRows) {
    if (!brokenTrees.has(row.tree) && treeExists(store, row.tree)) continue;
    if (repair) deleteKey(store, row.name);
    // a key no project uses is a cache entry: its loss is a cache miss (garbage a killed gc left), not damage
    if (!usedKeys.has(row.name)) {
      report.garbage.keys++;
      continue;
    }
    problem({ kind: 'broken-key', path: row.name, detail: `tree ${row.tree} is damaged or missing; the next install re-creates it`, repaired: repair });
  }
  for (const row of projectRows) {
    if (!brokenTrees.has(row.tree) && treeExists(store, row.tree)) continue;
    problem({ kind: 'broken-project', path: `${row.path} (${row.ecosystem})`, detail: `its tree ${row.tree} is damaged; run the install there again`, repaired: false });
  }
  report.tmpRemoved = cleanTmp(store);
  setCounters(store, { objects: report.objects, object_bytes: report.objectBytes, trees: report.trees, tree_bytes: report.treeBytes });
  return report;
}

/**
 * The index and refs/ must agree: every key and project in one is in the
 * other. Repair copies each way (refs/ → index for what a lost index
 * forgot; index → refs/ for what a format-1 store never wrote).
 */
function checkRefs(store: Store, repair: boolean, problem: (p: VerifyProblem) => void): void {
  const keyScan = scanKeyRefs(store.home);
  const projectScan = scanProjectRefs(store.home);
  for (const path of [...keyScan.unreadable, ...projectScan.unreadable]) problem({ kind: 'unreadable-ref', path, detail: 'not a velo ref file', repaired: false });
  const indexedKeys = new Set((store.index.prepare('SELECT name FROM keys').all() as { name: string }[]).map((r) => r.name));
  const indexedProjects = new Set((store.index.prepare('SELECT path, ecosystem FROM projects').all() as { path: string; ecosystem: string }[]).map((r) => `${r.path}\0${r.ecosystem}`));
  const refKeys = new Set(keyScan.refs.map((r) => r.name));
  const refProjects = new Set(projectScan.refs.map((r) => `${r.path}\0${r.ecosystem}`));
  const unindexed = [...keyScan.refs.filter((r) => !indexedKeys.has(r.name)).map((r) => r.name), ...projectScan.refs.filter((r) => !indexedProjects.has(`${r.path}\0${r.ecosystem}`)).map((r) => `${r.path} (${r.ecosystem})`)];
  // an install running beside verify writes a ref just before its row: look again before calling a ref missing
  const missing = [
    ...[...indexedKeys].filter((k) => !refKeys.has(k) && !existsSync(keyRefPath(store.home, k))),
    ...[...indexedProjects]
      .filter((p) => !refProjects.has(p) && !existsSync(projectRefPath(store.home, ...(p.split('\0') as [string, string]))))
      .map((p) => p.replace('\0', ' (') + ')'),
  ];
  if (repair && unindexed.length > 0) syncIndexFromRefs(store);
  if (repair && missing.length > 0) writeMissingRefs(store);
  for (const name of unindexed) problem({ kind: 'unindexed-ref', path: name, detail: 'in refs/ but not in the index', repaired: repair });
  for (const name of missing) problem({ kind: 'missing-ref', path: name, detail: 'in the index but has no ref file under refs/', repaired: repair });
}

/**
 * Look for intact copies of damaged objects in registered projects (files
 * laid out by copy or reflink are not the object itself) and put them back.
 * Returns the object ids (digest + 'x' when executable) restored.
 */
async function restoreFromProjects(store: Store, damaged: Map<string, { digest: string; exec: boolean }>): Promise<string[]> {
  const restored: string[] = [];
  const rows = store.index.prepare('SELECT path, tree FROM projects').all() as { path: string; tree: string }[];
  for (const row of rows) {
    if (damaged.size === 0) break;
    let entries;
    try {
      entries = parseTree(readFileSync(store.treePath(row.tree))).entries;
    } catch {
      continue;
    }
    for (const e of entries) {
      const id = e.digest + (e.exec ? 'x' : '');
      if (e.kind !== 'file' || !damaged.has(id)) continue;
      const candidate = join(row.path, e.path);
      try {
        if (lstatSync(candidate).size !== e.size || (await hashFile(candidate, e.size)) !== e.digest) continue;
        await addFile(store, candidate, e.exec, e.size);
        damaged.delete(id);
        restored.push(id);
      } catch {
        /* not there or unreadable: try the next copy */
      }
    }
  }
  store.flushCounters();
  return restored;
}

function treeExists(store: Store, digest: string): boolean {
  try {
    lstatSync(store.treePath(digest));
    return true;
  } catch {
    return false;
  }
}

const TMP_NAME = /\.(\d+)\.[0-9a-f]+$/;

/** Remove temporary files whose writer process is gone. */
export function cleanTmp(store: Store): number {
  const dir = join(store.home, 'tmp');
  let removed = 0;
  for (const name of readdirSync(dir)) {
    const m = TMP_NAME.exec(name);
    if (m && processAlive(Number(m[1]))) continue;
    try {
      unlinkSync(join(dir, name));
      removed++;
    } catch {
      /* raced */
    }
  }
  return removed;
}
