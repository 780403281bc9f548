/**
 * The store: a directory of content-addressed objects and trees plus a
 * SQLite index (docs/FORMAT.md). Opening creates the layout on first use and
 * refuses a store written with a digest algorithm this build does not know.
 */
import { mkdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { VeloError, fsError } from '../errors.js';
import { DIGEST_ALGORITHM } from './hash.js';
import { objectPathIn, treePathIn, STORE_DIRS } from './layout.js';
import { type IndexDb } from './indexDb.js';
import { openStoreIndex } from './indexRecovery.js';
import { migrateToRefs, writeStoreMeta } from './migrate.js';
import { defaultHome } from '../config.js';
import { addCounters } from './counters.js';

/** 2: keys and projects are also kept as ref files under refs/ (docs/FORMAT.md). Format 1 is upgraded on open. */
export const STORE_FORMAT = 2;
const MIGRATES_FROM = [1];

export interface StoreMeta {
  format: number;
  digest: string;
  created: string;
}

export class Store {
  readonly home: string;
  meta: StoreMeta;
  #index: IndexDb | undefined;
  #prefixDirs = new Set<string>();

  private constructor(home: string, meta: StoreMeta) {
    this.home = home;
    this.meta = meta;
  }

  static open(home: string = defaultHome(), options: { onNotice?: (message: string) => void } = {}): Store {
    const metaPath = join(home, 'store.json');
    let meta: StoreMeta;
    let created = false;
    if (existsSync(metaPath)) {
      meta = readMeta(metaPath);
    } else {
      try {
        for (const dir of STORE_DIRS) mkdirSync(join(home, dir), { recursive: true });
        meta = { format: STORE_FORMAT, digest: DIGEST_ALGORITHM, created: new Date().toISOString() };
        writeStoreMeta(home, meta, join(home, 'tmp', `store.json.${process.pid}.${randomBytes(4).toString('hex')}`));
        meta = readMeta(metaPath);
        created = true;
      } catch (err) {
        throw fsError(err, `cannot create the store at ${home}`);
      }
    }
    if (meta.digest !== DIGEST_ALGORITHM || (meta.format !== STORE_FORMAT && !MIGRATES_FROM.includes(meta.format))) {
      throw new VeloError(
        'STORE_FORMAT',
        `the store at ${home} uses format ${meta.format} with ${meta.digest}; this velo reads format ${STORE_FORMAT} with ${DIGEST_ALGORITHM}`,
        { hint: 'point VELO_HOME at another directory, or upgrade velo' },
      );
    }
    const store = new Store(home, meta);
    store.onNotice = options.onNotice;
    // a new store gets its index now: from here on, an index.db that is missing means one was lost
    if (created) store.index;
    if (meta.format !== STORE_FORMAT) {
      mkdirSync(join(home, 'refs'), { recursive: true });
      store.meta = migrateToRefs(store);
    }
    return store;
  }

  /** The SQLite index, opened on first use (the no-op paths never open it); a damaged one is rebuilt from refs/. */
  get index(): IndexDb {
    this.#index ??= openStoreIndex(this);
    return this.#index;
  }

  /** Drop the open index (velo verify --repair moved it aside); the next use opens or rebuilds it. */
  reopenIndex(): void {
    try {
      this.#index?.close();
    } catch {
      /* a damaged index may fail to close */
    }
    this.#index = undefined;
  }

  /**
   * Hash every object before it is laid out (what --force asks for): a
   * mismatch is quarantined and reported like a tampered object, so the
   * install fetches it again. Off by default: the size/mtime guard is the
   * fast path.
   */
  hashBeforeLayout = false;
  /** objects hashed sound by this process (hashBeforeLayout) */
  readonly verifiedObjects = new Set<string>();

  #notices = new Set<string>();
  /** Where notices go (the CLI prints them on stderr); src never prints. */
  onNotice: ((message: string) => void) | undefined;

  /** Tell the user something once per process (a recovery that happened on the way). */
  notice(kind: string, message: string): void {
    if (this.#notices.has(kind)) return;
    this.#notices.add(kind);
    this.onNotice?.(message);
  }

  objectPath(digest: string, exec: boolean): string {
    return objectPathIn(this.home, digest, exec);
  }

  treePath(digest: string): string {
    return treePathIn(this.home, digest);
  }

  tmpPath(label: string): string {
    return join(this.home, 'tmp', `${label}.${process.pid}.${randomBytes(6).toString('hex')}`);
  }

  /** mkdir of objects/ab or trees/ab, remembered so it is done once per process */
  ensurePrefixDir(kind: 'objects' | 'trees', digest: string): void {
    const key = kind + digest.slice(0, 2);
    if (this.#prefixDirs.has(key)) return;
    mkdirSync(join(this.home, kind, digest.slice(0, 2)), { recursive: true });
    this.#prefixDirs.add(key);
  }

  /** New objects and trees are counted in memory and written to the index in one go (one write, not one per tree). */
  #pending = { objects: 0, object_bytes: 0, trees: 0, tree_bytes: 0 };

  noteNewObject(size: number): void {
    this.#pending.objects++;
    this.#pending.object_bytes += size;
  }

  noteNewTree(size: number): void {
    this.#pending.trees++;
    this.#pending.tree_bytes += size;
  }

  /** What is counted in memory and not yet in the index (a recount of the store must not count it twice). */
  get pendingCounts(): { objects: number; object_bytes: number; trees: number; tree_bytes: number } {
    return { ...this.#pending };
  }

  flushCounters(): void {
    if (this.#pending.objects === 0 && this.#pending.object_bytes === 0 && this.#pending.trees === 0) return;
    const delta = this.#pending;
    this.#pending = { objects: 0, object_bytes: 0, trees: 0, tree_bytes: 0 };
    addCounters(this, delta);
  }

  close(): void {
    if (this.#index || this.#pending.objects > 0 || this.#pending.trees > 0) this.flushCounters();
    this.#index?.close();
    this.#index = undefined;
  }
}

function readMeta(path: string): StoreMeta {
  try {
    const meta = JSON.parse(readFileSync(path, 'utf8')) as Partial<StoreMeta>;
    if (typeof meta.format !== 'number' || typeof meta.digest !== 'string') throw new Error('missing format or digest');
    return { format: meta.format, digest: meta.digest, created: String(meta.created ?? '') };
  } catch (err) {
    throw new VeloError('STORE_FORMAT', `${path} is not a velo store description: ${(err as Error).message}`);
  }
}
