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

// one row per upload (a pack, or a loose object as `objects/<digest>`) with its objects' places as JSON
// [[digest, offset, length, enc, at-in-frame], …]: a publish writes ~35,000 objects in ~15 rows, not 35,000
const SCHEMA = `
CREATE TABLE IF NOT EXISTS uploads (name TEXT PRIMARY KEY, pack TEXT NOT NULL, n INTEGER NOT NULL, entries TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS keys (name TEXT PRIMARY KEY, tree TEXT NOT NULL, at INTEGER NOT NULL);
`;

type UploadEntry = [digest: string, offset: number, length: number, enc: number, inFrame: number];

export class PublishRecord {
  readonly #db: DatabaseSync;
  readonly path: string;

  constructor(store: Store, remoteId: string) {
    const dir = join(store.home, 'remote');
    // .r3: the record's own format (bump when its tables change)
    this.path = join(dir, `${createHash('sha256').update(remoteId).digest('hex').slice(0, 16)}.r3.db`);
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
      const rows = this.#db.prepare('SELECT pack, entries FROM uploads WHERE at >= ? ORDER BY at').all(this.#since()) as { pack: string; entries: string }[];
      for (const r of rows) {
        for (const [d, offset, length, enc, inFrame] of JSON.parse(r.entries) as UploadEntry[]) {
          const loc = { pack: r.pack, offset, length };
          this.#objects.set(d, enc === 2 ? { ...loc, enc: 2, at: inFrame } : { ...loc, enc: enc === 1 ? 1 : 0 });
        }
      }
    }
    return this.#objects.get(digest);
  }

  /** Record one upload's objects (all in one pack, or one loose object). */
  addObjects(entries: [string, ObjectLocation][]): void {
    const first = entries[0];
    if (!first) return;
    const pack = first[1].pack;
    const rows: UploadEntry[] = entries.map(([d, l]) => [d, l.offset, l.length, l.enc, l.at ?? 0]);
    this.#db
      .prepare('INSERT OR REPLACE INTO uploads(name, pack, n, entries, at) VALUES(?, ?, ?, ?, ?)')
      .run(pack === '' ? `objects/${first[0]}` : pack, pack, rows.length, JSON.stringify(rows), Date.now());
    for (const [d, l] of entries) this.#objects?.set(d, l);
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
    const objects = Number((this.#db.prepare('SELECT coalesce(sum(n), 0) AS n FROM uploads').get() as { n: number }).n);
    // project records are noted in the keys table as `project:<name>` (publish.ts): not keys
    return { objects, keys: Number((this.#db.prepare("SELECT count(*) AS n FROM keys WHERE name NOT LIKE 'project:%'").get() as { n: number }).n) };
  }

  close(): void {
    this.#db.close();
  }
}
