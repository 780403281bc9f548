/**
 * After a successful install: publish what the remote lacks — objects (small
 * ones packed many to a PUT), then keys, each carrying its tree. A key is written only
 * after everything it names is there, so a reader never finds a key whose
 * content is missing. An install may hand keys over while it still runs
 * (Publisher.offer, as each package lands in the store): their objects are
 * encoded and uploaded alongside the install, their keys still wait for
 * finish(), which only a successful install calls. Every upload is recorded locally as soon as it
 * succeeded (publishRecord.ts): nothing is uploaded twice, and an
 * interrupted publish resumes. A damaged local object is never published:
 * what leaves is either the bytes an ingest just hashed (encoded there, on
 * the tarball worker, and handed over with the key) or a store file hashed
 * again as it is read (a mismatch skips the key).
 * VELO_REMOTE_MODE=read never gets here.
 */
import { hashBuffer } from '../store/hash.js';
import { getKeys } from '../store/keys.js';
import { readKeyRef } from '../store/refs.js';
import { readTreeBuffer } from '../store/trees.js';
import { parseTree, type ParsedEntry } from '../store/treeFormat.js';
import type { Store } from '../store/store.js';
import type { StatementSync } from 'node:sqlite';
import { PublishRecord } from './publishRecord.js';
import {
  OBJECT_PUBLISH_MAX,
  PACK_OBJECT_MAX,
  PACK_TARGET,
  bundleObjectName,
  encodeBundle,
  encodeRemoteKey,
  keyObjectName,
  looseObjectName,
  packObjectName,
  reviveBlobs,
  type EncodedBlob,
  type EncodedObjects,
  type ObjectLocation,
} from './remoteLayout.js';
import { encode, publishJobPool } from './remoteJobs.js';
import { encodeProjectRecord, projectObjectName, type ProjectToPublish } from './remoteProject.js';
import { Limiter, Semaphore, runPool } from './pool.js';
import type { Remote } from './remote.js';

export const UPLOAD_CONCURRENCY = 4;
const SMALL_CONCURRENCY = 16;
/** key PUTs are small and latency-bound: 1,000 × 3 KB against weed on loopback, 16 in flight 1.3–2.0 s, 64 in flight 1.1–1.3 s */
const KEY_CONCURRENCY = 64;
/** encoded bytes handed over by the install and waiting for their turn to upload, at most */
const ENCODED_BACKLOG_MAX = 64 << 20;
/** up to this many keys to publish are checked one by one (HEAD); more, by listing keys/ */
const HEAD_LIMIT = 200;

export interface PublishResult {
  /** keys written now */
  keys: number;
  /** keys the remote (or this store's record of it) already had */
  alreadyThere: number;
  /** keys not published because a local object did not match its digest, or was too large */
  skipped: number;
  objects: number;
  packs: number;
  bytes: number;
  requests: number;
}

interface Plan {
  name: string;
  tree: string;
  kind: string;
  files: ParsedEntry[];
  logicalSize: number;
  /** the serialized tree (a key record carries it) */
  treeData: Buffer;
}

export interface PublishHooks {
  /** called before each PUT with the object name (tests observe the order) */
  onPut?: (objectName: string) => void;
  /** the remote name of a local key (default: the same name) */
  remoteName?: (localName: string) => string;
}

/** A key's tree, read and parsed; undefined when the store cannot give it. */
function readPlan(store: Store, name: string, tree: string, kind: string): Plan | undefined {
  try {
    const treeData = readTreeBuffer(store, tree);
    const parsed = parseTree(treeData);
    return { name, tree, kind, files: parsed.entries.filter((e) => e.kind === 'file'), logicalSize: parsed.logicalSize, treeData };
  } catch {
    return undefined;
  }
}

/**
 * A pack's name: the BLAKE3 digest of its index (each object's digest and
 * where it is), not of its bytes, which are never concatenated (they go to
 * the socket part by part). Objects are named by their own digests, checked
 * by every reader; the name only has to differ between packs that differ.
 */
function packId(entries: [string, ObjectLocation][]): string {
  return hashBuffer(Buffer.from(entries.map(([d, l]) => `${d} ${l.offset} ${l.length} ${l.enc} ${l.at ?? 0}`).join('\n')));
}

function encodedSize(encoded: EncodedObjects): number {
  return encoded.blobs.reduce((n, b) => n + b.bytes.byteLength, 0);
}

/** Publish the keys among `names` whose local kind is one of `kinds`. */
export async function publishToRemote(store: Store, remote: Remote, names: string[], kinds: readonly string[], hooks: PublishHooks = {}): Promise<PublishResult> {
  return new Publisher(store, remote, hooks).finish(names, kinds);
}

/**
 * One publish, which may start before the install is over: offer() stages a
 * key's objects (as its ingest encoded them, else read, re-hashed and encoded
 * on the worker threads; then packed and uploaded)
 * as soon as the key is in the store; finish() stages the rest, waits for
 * every upload and only then writes the keys; abandon() (a failed install)
 * waits for the uploads in flight and writes no key. Uploaded objects are
 * recorded either way, so the next publish does not send them again.
 */
export class Publisher {
  readonly result: PublishResult = { keys: 0, alreadyThere: 0, skipped: 0, objects: 0, packs: 0, bytes: 0, requests: 0 };
  readonly #store: Store;
  readonly #remote: Remote;
  readonly #hooks: PublishHooks;
  readonly #record: PublishRecord | undefined;
  readonly #requests0: number;
  readonly #pool = publishJobPool();
  /** a few keys staged ahead of the uploads (which bound the memory through their Limiter) */
  readonly #staging: Semaphore;
  readonly #uploads = new Limiter(UPLOAD_CONCURRENCY);
  /** digests claimed by a staged key: another key sharing an object does not encode it again */
  readonly #queued = new Set<string>();
  /** remote key name → its staging (the plan, or undefined when it cannot be published) and the tree it stages */
  readonly #staged = new Map<string, { tree: string; plan: Promise<Plan | undefined> }>();
  #pack: { parts: Buffer[]; entries: [string, ObjectLocation][]; size: number } = { parts: [], entries: [], size: 0 };
  /** the last pack of the offered keys, sealed once no more offers come */
  #sealing: Promise<void> | undefined;
  #closed = false;

  constructor(store: Store, remote: Remote, hooks: PublishHooks = {}) {
    this.#store = store;
    this.#remote = remote;
    this.#hooks = hooks;
    this.#requests0 = remote.client.stats.requests;
    this.#staging = new Semaphore(this.#pool ? this.#pool.size * 2 + 2 : 1);
    if (this.#active()) {
      remote.phase = 'publish';
      this.#record = new PublishRecord(store, remote.id);
    }
  }

  #active(): boolean {
    return this.#remote.settings.mode !== 'read' && this.#remote.usable && !this.#closed;
  }

  #kindQuery: StatementSync | undefined;

  /** A key's kind: from its index row, else from its ref file (written at once, while a batch of index rows waits for its flush). */
  #keyKind(name: string): string {
    this.#kindQuery ??= this.#store.index.prepare('SELECT kind FROM keys WHERE name = ?');
    const row = this.#kindQuery.get(name) as { kind: string } | undefined;
    return row?.kind ?? readKeyRef(this.#store.home, name)?.kind ?? '';
  }

  #rename(localName: string): string {
    return this.#hooks.remoteName?.(localName) ?? localName;
  }

  /**
   * A key the remote was just asked for and lacks, now in the local store:
   * upload its objects while the install goes on (never its key: finish() does that).
   */
  offer(localName: string, tree: string, encoded?: EncodedObjects, kind?: string): void {
    if (!this.#active()) return;
    const name = this.#rename(localName);
    if (this.#staged.has(name) || this.#record!.keyTree(name) === tree) return;
    // uploads slower than the install: past the backlog bound, the objects are read from the store when their turn comes
    const size = encoded ? encodedSize(encoded) : 0;
    const take = encoded !== undefined && this.#encodedBacklog + size <= ENCODED_BACKLOG_MAX;
    if (take) this.#encodedBacklog += size;
    const staged = this.#stage(name, tree, kind ?? this.#keyKind(localName), take ? encoded : undefined);
    const release = (): void => {
      if (take) this.#encodedBacklog -= size;
    };
    staged.then(release, release);
  }

  /** bytes of offered, encoded objects not yet in a pack */
  #encodedBacklog = 0;

  #stage(name: string, tree: string, kind: string, encoded?: EncodedObjects): Promise<Plan | undefined> {
    const plan = this.#staging.run(() => this.#stageObjects(name, tree, kind, encoded));
    // an unexpected error surfaces in finish() (a warning), never as an unhandled rejection
    plan.catch(() => undefined);
    this.#staged.set(name, { tree, plan });
    return plan;
  }

  async #put(objectName: string, body: Buffer | Buffer[], type?: string): Promise<boolean> {
    this.#hooks.onPut?.(objectName);
    const ok = await this.#remote.guard(async () => {
      await this.#remote.client.put(objectName, body, type);
      return true;
    });
    if (ok) this.result.bytes += Buffer.isBuffer(body) ? body.length : body.reduce((n, p) => n + p.length, 0);
    return ok === true;
  }

  async #sealPack(): Promise<void> {
    if (this.#pack.size === 0 || !this.#remote.usable) return;
    const sealed = this.#pack;
    this.#pack = { parts: [], entries: [], size: 0 };
    const id = packId(sealed.entries);
    await this.#uploads.admit(async () => {
      if (await this.#put(packObjectName(this.#remote.prefix, id), sealed.parts)) {
        this.#record!.addObjects(sealed.entries.map(([d, l]) => [d, { ...l, pack: id }]));
        this.result.packs++;
        this.result.objects += sealed.entries.length;
      }
    });
  }

  async #addToUploads(blob: EncodedBlob, digestOf: (index: number) => string): Promise<void> {
    const { bytes, enc } = blob;
    if (bytes.length > PACK_OBJECT_MAX) {
      // large objects are never framed: one member
      const digest = digestOf(blob.members[0]![0]);
      await this.#uploads.admit(async () => {
        if (await this.#put(looseObjectName(this.#remote.prefix, digest), bytes)) {
          this.#record!.addObjects([[digest, { pack: '', offset: 0, length: bytes.length, enc }]]);
          this.result.objects++;
        }
      });
      return;
    }
    const pack = this.#pack;
    for (const [index, at] of blob.members) {
      pack.entries.push([digestOf(index), { pack: '', offset: pack.size, length: bytes.length, enc, ...(enc === 2 ? { at } : {}) }]);
    }
    pack.parts.push(bytes);
    pack.size += bytes.length;
    if (pack.size >= PACK_TARGET) await this.#sealPack();
  }

  /**
   * Hand a key's objects the remote lacks to the uploads: those its ingest
   * encoded as it hashed them (`encoded`) as they are, the others read from
   * the store, re-hashed and encoded on the pool.
   */
  async #stageObjects(name: string, tree: string, kind: string, encoded?: EncodedObjects): Promise<Plan | undefined> {
    if (!this.#remote.usable) return undefined;
    const store = this.#store;
    const plan = readPlan(store, name, tree, kind);
    if (!plan) {
      this.result.skipped++;
      return undefined;
    }
    const fresh = new Map<string, ParsedEntry>();
    for (const e of plan.files) {
      if (e.size === 0 || this.#queued.has(e.digest) || this.#record!.objectLocation(e.digest)) continue;
      if (e.size > OBJECT_PUBLISH_MAX) {
        this.result.skipped++;
        return undefined;
      }
      fresh.set(e.digest, e);
    }
    // claimed before the await
    for (const digest of fresh.keys()) this.#queued.add(digest);
    if (encoded) {
      const digestOf = (i: number): string => encoded.digests[i]!;
      for (const blob of reviveBlobs(encoded.blobs)) {
        // a blob none of whose objects this key still needs (another key's, already up) is not sent again
        if (!blob.members.some(([i]) => fresh.has(digestOf(i)))) continue;
        for (const [i] of blob.members) fresh.delete(digestOf(i));
        await this.#addToUploads(blob, digestOf);
      }
    }
    const rest = [...fresh.values()];
    if (rest.length === 0) return plan;
    const { blobs, bad } = await encode(
      this.#pool,
      rest.map((e) => ({ digest: e.digest, size: e.size, path: store.objectPath(e.digest, e.exec) })),
    );
    for (const blob of blobs) await this.#addToUploads(blob, (i) => rest[i]!.digest);
    // an object missing, or edited in place in the store: never published, and neither is this key
    if (bad.length > 0) {
      this.result.skipped++;
      return undefined;
    }
    return plan;
  }

  /**
   * No more offers are coming (the install's downloads are over): once the
   * offered keys are staged, the last pack goes up while the install lays
   * node_modules out, instead of after it.
   */
  offersDone(): void {
    if (!this.#active()) return;
    const staged = [...this.#staged.values()].map((s) => s.plan);
    const seal = Promise.allSettled(staged).then(() => this.#sealPack());
    seal.catch(() => undefined);
    this.#sealing = seal;
  }

  /** A key's record, when the remote has every object of it (by this store's record). */
  #keyBody(p: Plan): Buffer | undefined {
    const locations = new Map<string, ObjectLocation>();
    for (const e of p.files) {
      if (e.size === 0) continue;
      const loc = this.#record!.objectLocation(e.digest);
      if (!loc) return undefined;
      locations.set(e.digest, loc);
    }
    return encodeRemoteKey({ name: p.name, kind: p.kind, tree: p.tree, treeData: p.treeData, files: p.files.length, bytes: p.logicalSize }, locations);
  }

  /**
   * After a successful install: what is left of these keys' objects, then
   * the keys; then, when `bundle` (the lockfile's whole key set) is given
   * and keys were written, the bundle of their records.
   */
  async finish(names: string[], kinds: readonly string[], bundle?: string[], project?: ProjectToPublish): Promise<PublishResult> {
    if (!this.#active()) {
      await this.abandon();
      return this.result;
    }
    try {
      const local = await this.#publishKeys(names, kinds, bundle);
      if (project && local && this.#remote.usable) await this.#publishProject(project, local);
      return this.result;
    } finally {
      await this.abandon();
    }
  }

  /**
   * A project record last, once the remote has every key it names (by this
   * store's record) — a reader never finds one whose keys are missing — and
   * only when neither this store's record nor the remote has it already.
   */
  async #publishProject(project: ProjectToPublish, local: Map<string, string>): Promise<void> {
    const record = this.#record!;
    const complete = project.keys.every((k) => {
      const name = this.#rename(k);
      const tree = local.get(name);
      return tree !== undefined && record.keyTree(name) === tree;
    });
    const recordName = `project:${project.name}`;
    if (!complete || record.keyTree(recordName) === project.id) return;
    const objectName = projectObjectName(this.#remote.prefix, project.name);
    const there = await this.#remote.guard(() => this.#remote.client.exists(objectName));
    if (there === undefined) return;
    if (!there) {
      const full = project.load();
      if (!full || !(await this.#put(objectName, encodeProjectRecord(full), 'application/json'))) return;
    }
    record.addKeys([[recordName, project.id]]);
  }

  /** The keys' objects, then the keys, then the bundle; the remote's keys by local tree (undefined when publishing stopped). */
  async #publishKeys(names: string[], kinds: readonly string[], bundle?: string[]): Promise<Map<string, string> | undefined> {
    const store = this.#store;
    const record = this.#record!;
    const result = this.result;
    // remote name → kind, tree
    const kindOf = new Map(names.map((n) => [this.#rename(n), this.#keyKind(n)]));
    const local = new Map([...getKeys(store, names.filter((n) => kinds.includes(kindOf.get(this.#rename(n))!)))].map(([n, t]) => [this.#rename(n), t]));
    let todo = [...local].filter(([name, tree]) => record.keyTree(name) !== tree);
    // keys this run read from the remote: there, with this tree (a fresh machine asks for none of them again)
    const read = todo.filter(([name, tree]) => this.#remote.found.get(name) === tree);
    if (read.length > 0) {
      record.addKeys(read);
      todo = todo.filter(([name, tree]) => this.#remote.found.get(name) !== tree);
    }
    if (todo.length === 0) {
      result.alreadyThere = local.size;
      return local;
    }
    // what the remote has already (another machine may have published it): a HEAD
    // each for a few keys, one listing of keys/ for many; not asked again for the
    // keys offered during the install (the remote was just asked for them)
    const unasked = todo.filter(([name, tree]) => this.#staged.get(name)?.tree !== tree);
    const present = new Set<string>();
    if (unasked.length > 0) {
      const asked = await this.#remote.guard(async () => {
        if (unasked.length <= HEAD_LIMIT) {
          await runPool(unasked, SMALL_CONCURRENCY, async ([name]) => {
            const objectName = keyObjectName(this.#remote.prefix, name);
            if (await this.#remote.client.exists(objectName)) present.add(objectName);
          });
        } else for await (const o of this.#remote.client.list(`${this.#remote.prefix}keys/`)) present.add(o.key);
        return true;
      });
      if (!asked) return undefined;
    }
    const isPresent = ([name]: [string, string]): boolean => present.has(keyObjectName(this.#remote.prefix, name));
    record.addKeys(todo.filter(isPresent));
    todo = todo.filter((e) => !isPresent(e));
    result.alreadyThere = local.size - todo.length;

    // objects first: those not staged during the install now
    const plans = await Promise.all(
      todo.map(([name, tree]) => {
        const staged = this.#staged.get(name);
        return staged?.tree === tree ? staged.plan : this.#stage(name, tree, kindOf.get(name) ?? '');
      }),
    );
    await this.#sealing;
    await this.#sealPack();
    await this.#uploads.idle();
    if (!this.#remote.usable) return undefined;

    // keys last (each carrying its tree), for the keys whose objects are all there
    const written = new Map<string, Buffer>();
    await runPool(plans, KEY_CONCURRENCY, async (p) => {
      const body = p && this.#keyBody(p);
      if (!body) return;
      if (await this.#put(keyObjectName(this.#remote.prefix, p.name), body, 'application/json')) {
        record.addKeys([[p.name, p.tree]]);
        written.set(p.name, body);
        result.keys++;
      }
    });
    // then the lockfile's bundle: every key of it this store knows the remote has
    if (bundle && written.size > 0 && this.#remote.usable) {
      const names = [...new Set(bundle.map((n) => this.#rename(n)))];
      const bodies: Buffer[] = [];
      for (const name of names) {
        const tree = local.get(name);
        const known = tree !== undefined && record.keyTree(name) === tree ? readPlan(store, name, tree, kindOf.get(name) ?? '') : undefined;
        const body = written.get(name) ?? (known && this.#keyBody(known));
        if (body) bodies.push(body);
      }
      await this.#put(bundleObjectName(this.#remote.prefix, names), encodeBundle(bodies), 'application/json');
    }
    return local;
  }

  /** Finish the object uploads (they are recorded: the next publish does not send them again), write no key, close. Idempotent. */
  async abandon(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#staged.values()].map((s) => s.plan));
    await this.#sealing?.catch(() => undefined);
    if (this.#record) await this.#sealPack();
    await this.#uploads.idle();
    this.#record?.close();
    this.result.requests = this.#remote.client.stats.requests - this.#requests0;
    // publishing is over: its encode workers go now, not after the pool's idle delay (which kept a
    // finished `velo npm ci` alive for seconds)
    this.#pool?.stopIfIdle();
  }
}
