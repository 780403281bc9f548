/**
 * One remote as an install sees it: the S3 client, the settings, and the
 * rule that a remote failure is never worse than no remote. The first
 * failure (unreachable, refused, timed out) stops every further request and
 * leaves ONE warning; damaged or missing content leaves one warning too.
 * Callers read `warnings` and go on with the registry.
 */
import { RemoteError, S3Client } from './s3Client.js';
import { remoteSettings, type RemoteSettings, type RemoteSources } from './remoteConfig.js';
import type { Store } from '../store/store.js';
import type { FillOptions, FillResult, LazyFill } from './fill.js';
import type { PublishHooks, PublishResult, Publisher } from './publish.js';
import type { EncodedObjects } from './remoteLayout.js';
import type { ProjectRecord, ProjectToPublish } from './remoteProject.js';

/** What an install did with the remote, for its summary. */
export interface RemoteReport {
  url: string;
  mode: 'read' | 'readwrite';
  /** packages whose trees came from the remote */
  fromRemote: number;
  /** node_modules was laid out from the remote's record of this project (no planning) */
  project: boolean;
  downloadedBytes: number;
  /** objects left in the remote for a lazy mount to fetch on first open */
  lazyObjects: number;
  /** keys this run wrote to the remote */
  published: number;
  uploadedBytes: number;
  requests: number;
  /** at most one per kind of trouble; the install went on without the remote */
  warnings: string[];
}

export class Remote {
  readonly settings: RemoteSettings;
  readonly client: S3Client;
  #failure: { message: string; during: 'fetch' | 'publish' } | undefined;
  /** what was damaged, in the order met (the same damage met twice is one item) */
  readonly #damaged = new Set<string>();
  /** what the remote is being used for now (named in the warning) */
  phase: 'fetch' | 'publish' = 'fetch';

  constructor(settings: RemoteSettings, client: S3Client = new S3Client(settings.location)) {
    this.settings = settings;
    this.client = client;
  }

  get prefix(): string {
    return this.settings.prefix;
  }

  /** what identifies this remote in the local publish record */
  get id(): string {
    return `${this.settings.location.endpoint} ${this.settings.url}`;
  }

  get usable(): boolean {
    return this.#failure === undefined;
  }

  /** Run a request; a RemoteError stops the remote for this run and is remembered once. */
  async guard<T>(fn: () => Promise<T>): Promise<T | undefined> {
    if (this.#failure !== undefined) return undefined;
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof RemoteError)) throw err;
      this.#failure ??= { message: err.message, during: this.phase };
      return undefined;
    }
  }

  #filled: FillResult | undefined;
  #published: PublishResult | undefined;

  /** Look package keys up in the remote; returns key → tree for those now in the local store. */
  async fill(store: Store, names: string[], kinds: readonly string[], options: FillOptions = {}): Promise<Map<string, string>> {
    const { fillFromRemote } = await import('./fill.js');
    let r: FillResult;
    try {
      r = await fillFromRemote(store, this, names, kinds, options);
    } catch (err) {
      // never worse than no remote: whatever went wrong, the registry path follows
      this.#failure ??= { message: `unexpected error: ${(err as Error).message}`, during: 'fetch' };
      return new Map();
    }
    for (const name of r.absent) this.#absent.add(name);
    this.#noteFilled(r);
    return r.trees;
  }

  /**
   * Look package keys up for a lazy mount: their trees (checked; into the
   * store unless `putTrees` is false) and where their missing objects are; no object is downloaded, no
   * key set. Undefined when the remote failed (the registry path follows).
   */
  async fillLazy(store: Store, names: string[], kinds: readonly string[], bundle?: string[], putTrees = true): Promise<LazyFill | undefined> {
    const { lazyFillFromRemote } = await import('./fill.js');
    try {
      const lazy = await lazyFillFromRemote(store, this, names, kinds, bundle, putTrees);
      this.#lazyTrees += lazy.trees.size;
      for (const [name, tree] of lazy.trees) this.#found.set(name, tree);
      this.#lazyObjects += lazy.missing.size;
      return lazy;
    } catch (err) {
      this.#failure ??= { message: `unexpected error: ${(err as Error).message}`, during: 'fetch' };
      return undefined;
    }
  }

  /** Download the objects of a lazy fill's files that `pick` chooses now (fill.ts fetchLazyPart); a key that failed leaves the fill. */
  async fetchLazyPart(store: Store, lazy: LazyFill, pick: (path: string) => boolean): Promise<void> {
    const { fetchLazyPart } = await import('./fill.js');
    const trees = lazy.trees.size;
    const missing = lazy.missing.size;
    try {
      const r = await fetchLazyPart(store, this, lazy, pick);
      this.#noteFilled(r);
    } catch (err) {
      this.#failure ??= { message: `unexpected error: ${(err as Error).message}`, during: 'fetch' };
      lazy.trees.clear();
      lazy.found = [];
    }
    this.#lazyTrees -= trees - lazy.trees.size;
    this.#lazyObjects -= missing - lazy.missing.size;
  }

  /** Download what a lazy fill left in the remote and set its keys; returns key → tree for those now complete. */
  async completeLazy(store: Store, lazy: LazyFill): Promise<Map<string, string>> {
    const { completeLazyFill } = await import('./fill.js');
    try {
      const r = await completeLazyFill(store, this, lazy);
      this.#lazyTrees -= lazy.trees.size;
      this.#lazyObjects -= lazy.missing.size;
      this.#noteFilled(r);
      return r.trees;
    } catch (err) {
      this.#failure ??= { message: `unexpected error: ${(err as Error).message}`, during: 'fetch' };
      return new Map();
    }
  }

  #lazyTrees = 0;
  #lazyObjects = 0;
  /** project records read from the remote this run (not published again) */
  readonly #projectsRead = new Set<string>();
  #projectUsed = false;

  /** The remote's project record of these install inputs, checked; undefined when it has none (or it is not a good one: one warning). */
  async project(name: string): Promise<ProjectRecord | undefined> {
    const { PROJECT_RECORD_MAX, decodeProjectRecord, projectObjectName } = await import('./remoteProject.js');
    this.phase = 'fetch';
    const data = await this.guard(() => this.client.get(projectObjectName(this.prefix, name), undefined, PROJECT_RECORD_MAX));
    if (data === undefined) return undefined;
    try {
      const record = decodeProjectRecord(data, name);
      this.#projectsRead.add(name);
      return record;
    } catch (err) {
      this.damaged((err as Error).message);
      return undefined;
    }
  }

  /** The install was laid out from the remote's project record (for the report). */
  noteProjectUsed(): void {
    this.#projectUsed = true;
  }

  /** key → tree of every key this run found in the remote, checked (a publish need not ask for them again) */
  readonly #found = new Map<string, string>();

  /** The keys this run read from the remote and found good, with their trees. */
  get found(): ReadonlyMap<string, string> {
    return this.#found;
  }

  #noteFilled(r: FillResult): void {
    for (const [name, tree] of r.trees) this.#found.set(name, tree);
    const prev = this.#filled;
    this.#filled = prev ? { ...r, trees: new Map([...prev.trees, ...r.trees]), absent: [], bytes: prev.bytes + r.bytes, objects: prev.objects + r.objects } : r;
  }

  #publisher: Publisher | undefined;
  /** keys the remote answered it does not have (fill): the only ones offered early */
  readonly #absent = new Set<string>();

  /**
   * Start publishing while the install still runs (never in read mode):
   * offer() then hands over keys the remote lacked, as they land in the
   * store; their objects upload alongside the install, their keys wait for
   * publish(). An install that fails calls settle() instead.
   */
  async beginPublish(store: Store, hooks: PublishHooks = {}): Promise<void> {
    if (this.settings.mode === 'read' || !this.usable || this.#publisher) return;
    const { Publisher } = await import('./publish.js');
    try {
      this.#publisher = new Publisher(store, this, hooks);
    } catch (err) {
      this.#failure ??= { message: `unexpected error: ${(err as Error).message}`, during: 'publish' };
    }
  }

  /**
   * A key now in the local store (after beginPublish): when the remote
   * answered it does not have it, its objects start uploading. (A key the
   * remote has, damaged, is left to publish()'s own check, as before.)
   */
  offer(name: string, tree: string, encoded?: EncodedObjects, kind?: string): void {
    if (this.#absent.has(name)) this.#publisher?.offer(name, tree, encoded, kind);
  }

  /** Whether offer() will upload this key's objects (so its ingest may encode them as it hashes them). */
  wantsObjects(name: string): boolean {
    return this.#publisher !== undefined && this.#absent.has(name) && this.settings.mode !== 'read' && this.usable;
  }

  /** No more offers this install: the last pack goes up now. */
  offersDone(): void {
    this.#publisher?.offersDone();
  }

  /** The install failed: let the uploads in flight finish (they are recorded), publish no key. */
  async settle(): Promise<void> {
    const p = this.#publisher;
    this.#publisher = undefined;
    await p?.abandon();
  }

  /**
   * Publish what the remote lacks of these keys, those of the given kinds
   * (never in read mode); `bundle`: the lockfile's key set, whose bundle follows the keys;
   * `project`: the whole-project record, written last (unless it was read from here this run).
   */
  async publish(store: Store, names: string[], kinds: readonly string[], hooks: PublishHooks = {}, bundle?: string[], project?: ProjectToPublish): Promise<void> {
    const early = this.#publisher;
    this.#publisher = undefined;
    if (this.settings.mode === 'read' || !this.usable) {
      await early?.abandon();
      return;
    }
    let r: PublishResult;
    try {
      const { Publisher } = await import('./publish.js');
      const shared = project && !this.#projectsRead.has(project.name) ? project : undefined;
      r = await (early ?? new Publisher(store, this, hooks)).finish(names, kinds, bundle, shared);
    } catch (err) {
      // the install already succeeded: a publishing failure of any kind is a warning
      this.#failure ??= { message: `unexpected error: ${(err as Error).message}`, during: 'publish' };
      await early?.abandon();
      return;
    }
    const prev = this.#published;
    this.#published = prev ? { ...r, keys: prev.keys + r.keys, bytes: prev.bytes + r.bytes } : r;
  }

  report(): RemoteReport {
    return {
      url: this.settings.url,
      mode: this.settings.mode,
      fromRemote: (this.#filled?.trees.size ?? 0) + this.#lazyTrees,
      project: this.#projectUsed,
      // bytes that crossed the network (objects compressed), not what they unpack to
      downloadedBytes: this.client.stats.bytesIn,
      lazyObjects: this.#lazyObjects,
      published: this.#published?.keys ?? 0,
      uploadedBytes: this.#published?.bytes ?? 0,
      requests: this.client.stats.requests,
      warnings: this.warnings(),
    };
  }

  /** Content that was missing or did not match its digest (remembered for one warning). */
  damaged(what: string): void {
    // the same damage met twice (the project record's fill, then the lockfile's) is one item
    this.#damaged.add(what);
  }

  get damagedCount(): number {
    return this.#damaged.size;
  }

  /** At most one warning per kind of trouble, for the CLI to print. */
  warnings(): string[] {
    const out: string[] = [];
    const f = this.#failure;
    if (f !== undefined) {
      out.push(
        f.during === 'fetch'
          ? `remote ${this.settings.url} not used: ${f.message}; packages came from the registry`
          : `remote ${this.settings.url}: publishing stopped: ${f.message}; the next install resumes it`,
      );
    }
    if (this.#damaged.size > 0) {
      const n = this.#damaged.size;
      out.push(`remote ${this.settings.url}: ${n} item${n === 1 ? '' : 's'} missing or not matching ${n === 1 ? 'its' : 'their'} digest (first: ${this.#damaged.values().next().value}); those packages came from the registry`);
    }
    return out;
  }
}

/** The remote the flags, environment and config files name; undefined when none (or --no-remote). */
export function openRemote(src: RemoteSources): Remote | undefined {
  const settings = remoteSettings(src);
  return settings ? new Remote(settings) : undefined;
}
