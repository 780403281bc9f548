/**
 * What this store has published to a remote, so nothing is uploaded twice
 * and an interrupted publish resumes where it stopped: one small SQLite file
 * per remote in <store>/remote/. A record is written right after the upload
 * it describes succeeded. Records are trusted for RECORD_TRUST_MS only: the
 * remote's gc deletes unreferenced content older than its grace period
 * (twice that), so a key written now never points at content gc may be
 * deleting.
 */
import { mkdirSync } from 'node:fs';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fsError } from '../errors.js';
import { writeTransaction } from '../store/indexDb.js';
import type { Store } from '../store/store.js';
import type { ObjectLocation } from './remoteLayout.js';

export const DEFAULT_GC_GRACE_MS = 48 * 3600_000;
export const RECORD_TRUST_MS = DEFAULT_GC_GRACE_MS / 2;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS objects (digest TEXT PRIMARY KEY, pack TEXT NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL, enc INTEGER NOT NULL, inframe INTEGER NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS keys (name TEXT PRIMARY KEY, tree TEXT NOT NULL, at INTEGER NOT NULL);
`;

export class PublishRecord {
  readonly #db: DatabaseSync;
  readonly path: string;

  constructor(store: Store, remoteId: string) {
    const dir = join(store.home, 'remote');
    // .r2: the record's own format (bump when its tables change)
    this.path = join(dir, `${createHash('sha256').update(remoteId).digest('hex').slice(0, 16)}.r2.db`);
    try {
      mkdirSync(dir, { recursive: true });
      this.#db = new DatabaseSync(this.path, { timeout: 30_000 });
      this.#db.exec('PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;');
      this.#db.exec(SCHEMA);
    } catch (err) {
      throw fsError(err, `cannot open the publish record ${this.path}`);
    }
  }

  #since(): number {
    return Date.now() - RECORD_TRUST_MS;
  }

  /** the trusted object records, read once (a publish asks for every file of every tree) */
  #objects: Map<string, ObjectLocation> | undefined;

  objectLocation(digest: string): ObjectLocation | undefined {
    if (!this.#objects) {
      this.#objects = new Map();
      const rows = this.#db.prepare('SELECT digest, pack, offset, length, enc, inframe FROM objects WHERE at >= ?').all(this.#since()) as {
        digest: string;
        pack: string;
        offset: number;
        length: number;
        enc: number;
        inframe: number;
      }[];
      for (const r of rows) {
        const loc = { pack: r.pack, offset: Number(r.offset), length: Number(r.length) };
        this.#objects.set(r.digest, r.enc === 2 ? { ...loc, enc: 2, at: Number(r.inframe) } : { ...loc, enc: r.enc === 1 ? 1 : 0 });
      }
    }
    return this.#objects.get(digest);
  }

  addObjects(entries: Iterable<[string, ObjectLocation]>): void {
    const now = Date.now();
    writeTransaction(this.#db, () => {
      const ins = this.#db.prepare('INSERT OR REPLACE INTO objects(digest, pack, offset, length, enc, inframe, at) VALUES(?, ?, ?, ?, ?, ?, ?)');
      for (const [d, l] of entries) {
        ins.run(d, l.pack, l.offset, l.length, l.enc, l.at ?? 0, now);
        this.#objects?.set(d, l);
      }
    });
  }

  /** the tree this key was published with, when that is recent */
  keyTree(name: string): string | undefined {
    // prepared once: a publish asks for every key it is offered
    this.#keyTreeQuery ??= this.#db.prepare('SELECT tree FROM keys WHERE name = ? AND at >= ?');
    return (this.#keyTreeQuery.get(name, this.#since()) as { tree: string } | undefined)?.tree;
  }

  #keyTreeQuery: StatementSync | undefined;

  addKeys(entries: Iterable<[name: string, tree: string]>): void {
    const now = Date.now();
    writeTransaction(this.#db, () => {
      const ins = this.#db.prepare('INSERT OR REPLACE INTO keys(name, tree, at) VALUES(?, ?, ?)');
      for (const [n, t] of entries) ins.run(n, t, now);
    });
  }

  counts(): { objects: number; keys: number } {
    const c = (t: string): number => Number((this.#db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n);
    return { objects: c('objects'), keys: c('keys') };
  }

  close(): void {
    this.#db.close();
  }
}
