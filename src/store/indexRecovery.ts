/**
 * Opening the index so that its loss loses nothing. index.db is a cache of
 * the refs/ files (refs.ts) plus counters, leases and probes, which are
 * recomputed or transient. When it is opened:
 *
 * - a file that cannot be a sound SQLite database (bad header, shorter than
 *   its header says, garbage) or that SQLite calls malformed is moved to
 *   quarantine/ with its WAL and a new one is built;
 * - a new or empty index is filled from refs/ and its counters recomputed;
 * - projects refs/ has and the index lacks (an index rolled back by a lost
 *   WAL, or replaced under a running process) are put back.
 *
 * When the store's refs are not complete (a store from before refs, whose
 * index was lost), the rebuilt index says the GC roots are unknown and gc
 * refuses to run until the user says the projects are registered again.
 */
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode, fsError, VeloError } from '../errors.js';
import { isCorruptIndexError, openIndex, writeTransaction, type IndexDb } from './indexDb.js';
import { countProjectRefs, scanKeyRefs, scanProjectRefs } from './refs.js';
import { walkStoreDir } from './walkStore.js';
import { processAlive } from './lock.js';
import type { Store } from './store.js';

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

/** Why the file at path cannot be a sound index, or undefined when it may be (absent and empty count as new). */
export function inspectIndexFile(path: string): string | undefined {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st) return undefined;
  if (!st.isFile()) return 'not a regular file';
  if (st.size === 0) {
    const wal = lstatSync(path + '-wal', { throwIfNoEntry: false });
    return wal && wal.size > 0 ? 'empty, beside a write-ahead log' : undefined;
  }
  if (st.size < 100) return `only ${st.size} bytes long`;
  const head = Buffer.alloc(100);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, 100, 0);
  } finally {
    closeSync(fd);
  }
  if (!head.subarray(0, 16).equals(SQLITE_MAGIC)) return 'not an SQLite database (bad header)';
  const rawPage = head.readUInt16BE(16);
  const pageSize = rawPage === 1 ? 65536 : rawPage;
  if (pageSize < 512 || (pageSize & (pageSize - 1)) !== 0) return 'bad page size in its header';
  // the page count in the header is valid when the change counter matches "version-valid-for"
  if (head.readUInt32BE(24) === head.readUInt32BE(92)) {
    const pages = head.readUInt32BE(28);
    if (st.size < pages * pageSize) return `truncated: ${st.size} bytes of the ${pages * pageSize} its header promises`;
  }
  return undefined;
}

export interface IndexRepair {
  reason: string;
  /** where the damaged file was moved */
  aside: string;
}

/** Open the store's index, repairing or rebuilding it as the header comment says. */
export function openStoreIndex(store: Store): IndexDb {
  const path = join(store.home, 'index.db');
  const reason = inspectIndexFile(path);
  if (reason !== undefined) moveDamagedIndex(store, path, reason);
  let opened;
  try {
    opened = openIndex(path);
  } catch (err) {
    if (!isCorruptIndexError((err as Error).cause)) throw err;
    moveDamagedIndex(store, path, ((err as Error).cause as Error).message);
    opened = openIndex(path);
  }
  try {
    fillFromRefs(store, opened.db, opened.fresh);
  } catch (err) {
    opened.db.close();
    throw err;
  }
  return opened.db;
}

/**
 * Check a readable index with SQLite's quick_check (velo verify --repair):
 * when it is unsound, move it aside; the caller reopens the store.
 */
export function checkIndexIntegrity(store: Store, options: { repair: boolean }): IndexRepair | undefined {
  const path = join(store.home, 'index.db');
  const reason = inspectIndexFile(path) ?? quickCheck(path);
  if (reason === undefined) return undefined;
  if (!options.repair) return { reason, aside: '' };
  store.reopenIndex();
  return moveDamagedIndex(store, path, reason);
}

function quickCheck(path: string): string | undefined {
  if (!existsSync(path)) return undefined;
  let opened;
  try {
    opened = openIndex(path);
  } catch (err) {
    if (isCorruptIndexError((err as Error).cause)) return ((err as Error).cause as Error).message;
    throw err;
  }
  try {
    const rows = opened.db.prepare('PRAGMA quick_check').all() as Record<string, string>[];
    const msgs = rows.map((r) => Object.values(r)[0]).filter((m) => m !== 'ok');
    return msgs.length === 0 ? undefined : `quick_check: ${msgs.slice(0, 3).join('; ')}`;
  } catch (err) {
    if (isCorruptIndexError(err)) return (err as Error).message;
    throw err;
  } finally {
    opened.db.close();
  }
}

/** Move index.db (and its WAL and shared memory) to quarantine/, once, under the rebuild lock. */
function moveDamagedIndex(store: Store, path: string, reason: string): IndexRepair {
  const aside = join(store.home, 'quarantine', `index.db.${Date.now()}.${process.pid}`);
  const seen = lstatSync(path, { throwIfNoEntry: false });
  let moved = false;
  withRebuildLock(store, () => {
    // another process may have moved it (and started a new one) while this one waited
    const now = lstatSync(path, { throwIfNoEntry: false });
    if (!now || (seen && now.ino !== seen.ino)) return;
    mkdirSync(join(store.home, 'quarantine'), { recursive: true });
    for (const suffix of ['', '-wal', '-shm']) {
      try {
        renameSync(path + suffix, aside + suffix);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw fsError(err, `cannot move the damaged store index ${path} aside`);
      }
    }
    moved = true;
  });
  if (moved) store.notice('index-damaged', `the store index was damaged (${reason}); the damaged copy is kept at ${aside}`);
  return { reason, aside };
}

const LOCK_WAIT_MS = 60_000;

function withRebuildLock(store: Store, fn: () => void): void {
  const dir = join(store.home, 'locks', 'index-rebuild');
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      mkdirSync(dir);
      break;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') {
        mkdirSync(join(store.home, 'locks'), { recursive: true });
        continue;
      }
      if (errnoCode(err) !== 'EEXIST') throw fsError(err, `cannot lock ${dir}`);
    }
    let holder = 0;
    try {
      holder = Number(readFileSync(join(dir, 'pid'), 'utf8'));
    } catch {
      /* being written, or its writer died before writing it */
    }
    if ((holder > 0 && !processAlive(holder)) || (holder === 0 && ageMs(dir) > 5_000)) {
      rmLock(dir);
      continue;
    }
    if (Date.now() > deadline) throw new VeloError('LOCKED', `the store index is being rebuilt by process ${holder}`, { hint: `if no velo is running, remove ${dir}` });
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  }
  try {
    writeFileSync(join(dir, 'pid'), String(process.pid));
    fn();
  } finally {
    rmLock(dir);
  }
}

function ageMs(path: string): number {
  const st = lstatSync(path, { throwIfNoEntry: false });
  return st ? Date.now() - st.mtimeMs : 0;
}

function rmLock(dir: string): void {
  try {
    unlinkSync(join(dir, 'pid'));
  } catch {
    /* not written */
  }
  try {
    rmdirSync(dir);
  } catch {
    /* another process took it over */
  }
}

export interface FillReport {
  keys: number;
  projects: number;
}

/**
 * Put into the index what refs/ holds and it lacks. Decided in one write
 * transaction, so two processes opening a new index fill it once.
 */
function fillFromRefs(store: Store, db: IndexDb, fresh: boolean): void {
  const filled = db.prepare("SELECT v FROM meta WHERE k = 'refs'").get() as { v: string } | undefined;
  if (filled && !fresh) {
    // cheap (a readdir and a count): a lost WAL or a replaced index shows as fewer projects than refs
    const n = Number((db.prepare('SELECT count(*) AS n FROM projects').get() as { n: number }).n);
    if (countProjectRefs(store.home) > n) writeTransaction(db, () => insertRefs(db, [], scanProjectRefs(store.home).refs));
    return;
  }
  writeTransaction(db, () => {
    if (db.prepare("SELECT v FROM meta WHERE k = 'refs'").get()) return;
    const keys = scanKeyRefs(store.home).refs;
    const projects = scanProjectRefs(store.home).refs;
    const report = insertRefs(db, keys, projects);
    const hasContent = firstStoreFile(store) !== undefined;
    if (fresh && hasContent) {
      recountStore(store, db);
      if (!refsComplete(store)) db.prepare("INSERT OR REPLACE INTO meta(k, v) VALUES('roots', 'unknown')").run();
      if (report.keys + report.projects > 0) {
        store.notice('index-filled', `the store index was rebuilt from refs/: ${report.keys} key(s), ${report.projects} project(s)`);
      }
    }
    db.prepare("INSERT OR REPLACE INTO meta(k, v) VALUES('refs', ?)").run(new Date().toISOString());
  });
}

/** Every key and project of this store has a ref file (store format ≥ 2). */
function refsComplete(store: Store): boolean {
  return store.meta.format >= 2;
}

function firstStoreFile(store: Store): string | undefined {
  for (const kind of ['trees', 'objects']) for (const f of walkStoreDir(join(store.home, kind))) return f.path;
  return undefined;
}

function insertRefs(db: IndexDb, keys: ReturnType<typeof scanKeyRefs>['refs'], projects: ReturnType<typeof scanProjectRefs>['refs']): FillReport {
  const report: FillReport = { keys: 0, projects: 0 };
  const insKey = db.prepare(
    'INSERT OR IGNORE INTO keys(name, tree, kind, logical_bytes, files, created, used) VALUES(?, ?, ?, ?, ?, ?, ?)',
  );
  for (const k of keys) report.keys += Number(insKey.run(k.name, k.tree, k.kind, k.logicalBytes, k.files, k.created, k.created).changes);
  const insProject = db.prepare(
    `INSERT OR IGNORE INTO projects(path, ecosystem, tree, method, projection, logical_bytes, files, packages, updated)
     VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insProjectKey = db.prepare('INSERT OR IGNORE INTO project_keys(path, ecosystem, key) VALUES(?, ?, ?)');
  for (const p of projects) {
    const added = Number(insProject.run(p.path, p.ecosystem, p.tree, p.method, p.projection, p.logicalBytes, p.files, p.packages, p.updated).changes);
    if (added === 0) continue;
    report.projects++;
    for (const k of p.keys) insProjectKey.run(p.path, p.ecosystem, k);
  }
  return report;
}

/** Counters of a rebuilt index: what objects/ and trees/ hold (sizes from lstat, nothing hashed). */
function recountStore(store: Store, db: IndexDb): void {
  const c = { objects: 0, object_bytes: 0, trees: 0, tree_bytes: 0 };
  for (const f of walkStoreDir(join(store.home, 'objects'))) {
    if (f.malformed) continue;
    c.objects++;
    c.object_bytes += lstatSync(f.path, { throwIfNoEntry: false })?.size ?? 0;
  }
  for (const f of walkStoreDir(join(store.home, 'trees'))) {
    if (f.malformed) continue;
    c.trees++;
    c.tree_bytes += lstatSync(f.path, { throwIfNoEntry: false })?.size ?? 0;
  }
  // objects and trees this process wrote before the index opened are added when it flushes its counters
  const pending = store.pendingCounts;
  c.objects -= pending.objects;
  c.object_bytes -= pending.object_bytes;
  c.trees -= pending.trees;
  c.tree_bytes -= pending.tree_bytes;
  const set = db.prepare('INSERT OR REPLACE INTO counters(name, value) VALUES(?, ?)');
  for (const [name, value] of Object.entries(c)) set.run(name, value);
}

/** gc's precondition: the index knows every project (false after a rebuild without complete refs). */
export function rootsKnown(db: IndexDb): boolean {
  return db.prepare("SELECT v FROM meta WHERE k = 'roots'").get() === undefined;
}

/** The user says every project that uses the store is registered again (velo gc --roots-registered). */
export function acceptRoots(db: IndexDb): void {
  db.prepare("DELETE FROM meta WHERE k = 'roots'").run();
}

/** Bring the index up to date with refs/ (gc, verify --repair): keys and projects refs have and it lacks. */
export function syncIndexFromRefs(store: Store): FillReport {
  const db = store.index;
  return writeTransaction(db, () => insertRefs(db, scanKeyRefs(store.home).refs, scanProjectRefs(store.home).refs));
}
