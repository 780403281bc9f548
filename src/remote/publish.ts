/**
 * After a successful install: publish what the remote lacks — objects (small
 * ones packed many to a PUT), then keys, each carrying its tree. A key is written only
 * after everything it names is there, so a reader never finds a key whose
 * content is missing. Every upload is recorded locally as soon as it
 * succeeded (publishRecord.ts): nothing is uploaded twice, and an
 * interrupted publish resumes. Objects are re-hashed before they leave: a
 * damaged local object is never published (its key is skipped).
 * VELO_REMOTE_MODE=read never gets here.
 */
import { hashBuffer } from '../store/hash.js';
import { getKeys } from '../store/keys.js';
import { readTreeBuffer } from '../store/trees.js';
import { parseTree, type ParsedEntry } from '../store/treeFormat.js';
import type { Store } from '../store/store.js';
import { PublishRecord } from './publishRecord.js';
import {
  OBJECT_PUBLISH_MAX,
  PACK_OBJECT_MAX,
  PACK_TARGET,
  encodeRemoteKey,
  keyObjectName,
  looseObjectName,
  packObjectName,
  type ObjectEncoding,
  type ObjectLocation,
} from './remoteLayout.js';
import { encode, remoteJobPool } from './remoteJobs.js';
import { Limiter, runPool } from './pool.js';
import type { Remote } from './remote.js';

export const UPLOAD_CONCURRENCY = 4;
const SMALL_CONCURRENCY = 16;
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
}

export interface PublishHooks {
  /** called before each PUT with the object name (tests observe the order) */
  onPut?: (objectName: string) => void;
  /** the remote name of a local key (default: the same name) */
  remoteName?: (localName: string) => string;
}

function keyKind(store: Store, name: string): string {
  return (store.index.prepare('SELECT kind FROM keys WHERE name = ?').get(name) as { kind: string } | undefined)?.kind ?? '';
}

/** Publish the keys among `names` whose local kind is one of `kinds`. */
export async function publishToRemote(store: Store, remote: Remote, names: string[], kinds: readonly string[], hooks: PublishHooks = {}): Promise<PublishResult> {
  const result: PublishResult = { keys: 0, alreadyThere: 0, skipped: 0, objects: 0, packs: 0, bytes: 0, requests: 0 };
  if (remote.settings.mode === 'read' || !remote.usable) return result;
  remote.phase = 'publish';
  const requests0 = remote.client.stats.requests;
  const record = new PublishRecord(store, remote.id);
  const put = async (objectName: string, body: Buffer, type?: string): Promise<boolean> => {
    hooks.onPut?.(objectName);
    const ok = await remote.guard(async () => {
      await remote.client.put(objectName, body, type);
      return true;
    });
    if (ok) result.bytes += body.length;
    return ok === true;
  };
  try {
    const rename = hooks.remoteName ?? ((n: string) => n);
    // remote name → tree
    const kindOf = new Map(names.map((n) => [rename(n), keyKind(store, n)]));
    const local = new Map([...getKeys(store, names.filter((n) => kinds.includes(kindOf.get(rename(n))!)))].map(([n, t]) => [rename(n), t]));
    let todo = [...local].filter(([name, tree]) => record.keyTree(name) !== tree);
    if (todo.length === 0) {
      result.alreadyThere = local.size;
      return result;
    }
    // what the remote has already (another machine may have published it): a HEAD
    // each for a few keys, one listing of keys/ for many
    const present = new Set<string>();
    const asked = await remote.guard(async () => {
      if (todo.length <= HEAD_LIMIT) {
        await runPool(todo, SMALL_CONCURRENCY, async ([name]) => {
          const objectName = keyObjectName(remote.prefix, name);
          if (await remote.client.exists(objectName)) present.add(objectName);
        });
      } else for await (const o of remote.client.list(`${remote.prefix}keys/`)) present.add(o.key);
      return true;
    });
    if (!asked) return result;
    const known = todo.filter(([name]) => present.has(keyObjectName(remote.prefix, name)));
    record.addKeys(known);
    todo = todo.filter(([name]) => !present.has(keyObjectName(remote.prefix, name)));
    result.alreadyThere = local.size - todo.length;

    // objects first: small ones into packs, large ones on their own
    const plans: Plan[] = [];
    const queued = new Set<string>();
    const uploads = new Limiter(UPLOAD_CONCURRENCY);
    let pack: { parts: Buffer[]; entries: [string, ObjectLocation][]; size: number } = { parts: [], entries: [], size: 0 };
    const sealPack = async (): Promise<void> => {
      if (pack.size === 0) return;
      const sealed = pack;
      pack = { parts: [], entries: [], size: 0 };
      const body = Buffer.concat(sealed.parts, sealed.size);
      const id = hashBuffer(body);
      await uploads.admit(async () => {
        if (await put(packObjectName(remote.prefix, id), body)) {
          record.addObjects(sealed.entries.map(([d, l]) => [d, { ...l, pack: id }]));
          result.packs++;
          result.objects += sealed.entries.length;
        }
      });
    };
    const addToUploads = async (e: ParsedEntry, bytes: Buffer, enc: ObjectEncoding): Promise<void> => {
      if (bytes.length > PACK_OBJECT_MAX) {
        await uploads.admit(async () => {
          if (await put(looseObjectName(remote.prefix, e.digest), bytes)) {
            record.addObjects([[e.digest, { pack: '', offset: 0, length: bytes.length, enc }]]);
            result.objects++;
          }
        });
        return;
      }
      pack.entries.push([e.digest, { pack: '', offset: pack.size, length: bytes.length, enc }]);
      pack.parts.push(bytes);
      pack.size += bytes.length;
      if (pack.size >= PACK_TARGET) await sealPack();
    };
    // reading, re-hashing and compressing run on worker threads, a few keys
    // ahead of the uploads (which bound the memory through the Limiter)
    const pool = remoteJobPool();
    await runPool(todo, pool ? pool.size * 2 + 2 : 1, async ([name, tree]) => {
      if (!remote.usable) return;
      let files: ParsedEntry[];
      let logicalSize: number;
      try {
        const parsed = parseTree(readTreeBuffer(store, tree));
        files = parsed.entries.filter((e) => e.kind === 'file');
        logicalSize = parsed.logicalSize;
      } catch {
        result.skipped++;
        return;
      }
      const fresh: ParsedEntry[] = [];
      for (const e of files) {
        if (e.size === 0 || queued.has(e.digest) || record.objectLocation(e.digest)) continue;
        if (e.size > OBJECT_PUBLISH_MAX) {
          result.skipped++;
          return;
        }
        fresh.push(e);
      }
      // claimed before the await: another key sharing an object does not encode it again
      for (const e of fresh) queued.add(e.digest);
      const encoded = await encode(
        pool,
        fresh.map((e) => ({ digest: e.digest, size: e.size, path: store.objectPath(e.digest, e.exec) })),
      );
      let ok = true;
      for (let i = 0; i < fresh.length; i++) {
        const out = encoded[i];
        // missing, or edited in place in the store: never published, and neither is this key
        if (!out) ok = false;
        else await addToUploads(fresh[i]!, out.bytes, out.enc);
      }
      if (!ok) {
        result.skipped++;
        return;
      }
      plans.push({ name, tree, kind: kindOf.get(name) ?? '', files, logicalSize });
    });
    await sealPack();
    await uploads.idle();
    if (!remote.usable) return result;

    // keys last (each carrying its tree), for the keys whose objects are all there
    const locate = (p: Plan): Map<string, ObjectLocation> | undefined => {
      const m = new Map<string, ObjectLocation>();
      for (const e of p.files) {
        if (e.size === 0) continue;
        const loc = record.objectLocation(e.digest);
        if (!loc) return undefined;
        m.set(e.digest, loc);
      }
      return m;
    };
    const ready = plans.filter((p) => locate(p) !== undefined);
    await runPool(ready, SMALL_CONCURRENCY, async (p) => {
      const locations = locate(p);
      if (!locations) return;
      const body = encodeRemoteKey({ name: p.name, kind: p.kind, tree: p.tree, treeData: readTreeBuffer(store, p.tree), files: p.files.length, bytes: p.logicalSize }, locations);
      if (await put(keyObjectName(remote.prefix, p.name), body, 'application/json')) {
        record.addKeys([[p.name, p.tree]]);
        result.keys++;
      }
    });
    return result;
  } finally {
    record.close();
    result.requests = remote.client.stats.requests - requests0;
  }
}
