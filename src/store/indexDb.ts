/**
 * The store's index: SQLite in WAL mode through node:sqlite. It maps names
 * (package keys, snapshot keys) to trees, records the projects that are GC
 * roots, keeps the counters `velo status` and the dashboard read, and holds
 * the leases that keep gc from racing an install.
 */
import { DatabaseSync } from 'node:sqlite';
import { dirname } from 'node:path';
import { VeloError, diskFullError, watchDiskOf } from '../errors.js';

const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS keys (
  name TEXT PRIMARY KEY,
  tree TEXT NOT NULL,
  kind TEXT NOT NULL DEFAULT '',
  logical_bytes INTEGER NOT NULL DEFAULT 0,
  files INTEGER NOT NULL DEFAULT 0,
  created INTEGER NOT NULL,
  used INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS projects (
  path TEXT NOT NULL,
  ecosystem TEXT NOT NULL,
  tree TEXT NOT NULL,
  method TEXT NOT NULL DEFAULT '',
  projection TEXT NOT NULL DEFAULT 'link',
  logical_bytes INTEGER NOT NULL DEFAULT 0,
  files INTEGER NOT NULL DEFAULT 0,
  packages INTEGER NOT NULL DEFAULT 0,
  updated INTEGER NOT NULL,
  PRIMARY KEY (path, ecosystem)
);
CREATE TABLE IF NOT EXISTS project_keys (
  path TEXT NOT NULL,
  ecosystem TEXT NOT NULL,
  key TEXT NOT NULL,
  PRIMARY KEY (path, ecosystem, key)
);
CREATE INDEX IF NOT EXISTS project_keys_key ON project_keys(key);
CREATE TABLE IF NOT EXISTS leases (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  pid INTEGER NOT NULL,
  kind TEXT NOT NULL,
  started INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS project_locks (
  path TEXT PRIMARY KEY,
  pid INTEGER NOT NULL,
  lease INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS probes (pair TEXT PRIMARY KEY, method TEXT NOT NULL, probed INTEGER NOT NULL);
`;

export type IndexDb = DatabaseSync;

export interface OpenedIndex {
  db: IndexDb;
  /** the file had no schema yet: created now, or left empty by a crash or a truncation */
  fresh: boolean;
}

/** SQLite's primary result codes velo tells apart (node:sqlite puts them in err.errcode). */
export const SQLITE_IOERR = 10;
export const SQLITE_CORRUPT = 11;
export const SQLITE_FULL = 13;
export const SQLITE_NOTADB = 26;

export function sqliteCode(err: unknown): number | undefined {
  const e = err as { code?: string; errcode?: number };
  return e?.code === 'ERR_SQLITE_ERROR' && typeof e.errcode === 'number' ? e.errcode & 0xff : undefined;
}

/** SQLite says the file is not a sound database. */
export function isCorruptIndexError(err: unknown): boolean {
  const c = sqliteCode(err);
  return c === SQLITE_CORRUPT || c === SQLITE_NOTADB;
}

export function openIndex(path: string): OpenedIndex {
  watchDiskOf(dirname(path));
  let db: DatabaseSync | undefined;
  let fresh: boolean;
  try {
    db = new DatabaseSync(path, { timeout: 30_000 });
    db.exec('PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF;');
    db.exec(SCHEMA);
    const row = db.prepare("SELECT v FROM meta WHERE k='schema'").get() as { v: string } | undefined;
    fresh = row === undefined;
    if (!row) {
      db.prepare("INSERT OR IGNORE INTO meta(k, v) VALUES('schema', ?)").run(String(SCHEMA_VERSION));
    } else if (Number(row.v) !== SCHEMA_VERSION) {
      throw new VeloError('STORE_FORMAT', `the store index ${path} has schema ${row.v}; this velo knows ${SCHEMA_VERSION}`);
    }
  } catch (err) {
    try {
      db?.close();
    } catch {
      /* already unusable */
    }
    if (err instanceof VeloError) throw err;
    const full = diskFullError(err, dirname(path), `cannot open the store index ${path}`);
    if (full) throw full;
    throw new VeloError('STORE_FORMAT', `cannot open the store index ${path}: ${(err as Error).message}`, { cause: err });
  }
  return { db, fresh };
}

/** Run fn inside BEGIN IMMEDIATE … COMMIT (a write lock held for its length). */
export function writeTransaction<T>(db: IndexDb, fn: () => T): T {
  db.exec('BEGIN IMMEDIATE');
  try {
    const result = fn();
    db.exec('COMMIT');
    return result;
  } catch (err) {
    // SQLite has already rolled back after some errors (SQLITE_FULL, IOERR):
    // a ROLLBACK then fails with "no transaction is active" and would hide the
    // error that matters (a full disk) behind one that does not.
    if (db.isTransaction) {
      try {
        db.exec('ROLLBACK');
      } catch {
        /* the original error is the one to report */
      }
    }
    throw err;
  }
}
