/**
 * The remote's gc: keys (and lockfile bundles, which hold key records)
 * written in the last `keepDays` days are live; project records (which
 * name keys, no content) older than that are deleted with the old keys; every pack and loose object
 * they reference is kept (a key carries its tree). Older keys and bundles are
 * deleted, then whatever no live key or bundle references — but only content older
 * than the grace period, so a publish in flight (its objects up, its key not
 * yet written) never loses anything. Publishers trust their own records for
 * half the default grace (publishRecord.ts), so a key written now never
 * points at content gc may delete.
 */
import { VeloError } from '../errors.js';
import { decodeBundle, decodeRemoteKey, keyObjectName, looseObjectName, packObjectName, type DecodedKey } from './remoteLayout.js';
import type { ListedObject } from './s3Client.js';
import { runPool } from './pool.js';
import { DEFAULT_GC_GRACE_MS } from './publishRecord.js';
import type { Remote } from './remote.js';

export interface RemoteGcOptions {
  keepDays: number;
  graceMs?: number;
  dryRun?: boolean;
  now?: number;
}

export interface RemoteGcResult {
  dryRun: boolean;
  keysKept: number;
  keysDeleted: number;
  /** keys whose body could not be read as a key (deleted like old keys) */
  keysUnreadable: number;
  bundlesKept: number;
  /** old or unreadable bundles deleted */
  bundlesDeleted: number;
  projectsKept: number;
  /** project records older than keepDays deleted (a reader of one whose keys are gone plans the lockfile instead) */
  projectsDeleted: number;
  deleted: { packs: number; objects: number; bytes: number };
  kept: { packs: number; objects: number; bytes: number };
}

const CONCURRENCY = 16;

export async function remoteGc(remote: Remote, o: RemoteGcOptions): Promise<RemoteGcResult> {
  if (remote.settings.mode === 'read') throw new VeloError('REFUSED', `VELO_REMOTE_MODE=read: remote gc deletes, and this remote is read-only here`);
  if (!(o.keepDays >= 0)) throw new VeloError('USAGE', `keep days must be >= 0`);
  const now = o.now ?? Date.now();
  const keepSince = now - o.keepDays * 86_400_000;
  const graceSince = now - (o.graceMs ?? DEFAULT_GC_GRACE_MS);
  const dryRun = o.dryRun === true;
  const { client, prefix } = remote;
  const result: RemoteGcResult = {
    dryRun,
    keysKept: 0,
    keysDeleted: 0,
    keysUnreadable: 0,
    bundlesKept: 0,
    bundlesDeleted: 0,
    projectsKept: 0,
    projectsDeleted: 0,
    deleted: { packs: 0, objects: 0, bytes: 0 },
    kept: { packs: 0, objects: 0, bytes: 0 },
  };
  const list = async (area: string): Promise<ListedObject[]> => {
    const out: ListedObject[] = [];
    for await (const x of client.list(`${prefix}${area}/`)) out.push(x);
    return out;
  };
  const del = async (names: string[]): Promise<void> => {
    if (!dryRun) await runPool(names, CONCURRENCY, (n) => client.delete(n));
  };

  const keys = await list('keys');
  const live = new Set<string>();
  const keepReferenced = (k: DecodedKey): void => {
    for (const [digest, loc] of k.locations) live.add(loc.pack === '' ? looseObjectName(prefix, digest) : packObjectName(prefix, loc.pack));
  };
  const old: string[] = [];
  await runPool(keys, CONCURRENCY, async (k) => {
    if (k.lastModified < keepSince) {
      old.push(k.key);
      return;
    }
    const body = await client.get(k.key);
    if (!body) return;
    let parsed;
    try {
      const name = (JSON.parse(body.toString('utf8')) as { name?: unknown }).name;
      if (typeof name !== 'string' || keyObjectName(prefix, name) !== k.key) throw new Error('misnamed');
      parsed = decodeRemoteKey(body, name);
    } catch {
      result.keysUnreadable++;
      if (k.lastModified < graceSince) old.push(k.key);
      return;
    }
    result.keysKept++;
    keepReferenced(parsed);
  });
  const oldBundles: string[] = [];
  await runPool(await list('bundles'), CONCURRENCY, async (b) => {
    if (b.lastModified < keepSince) {
      oldBundles.push(b.key);
      return;
    }
    const body = await client.get(b.key);
    if (!body) return;
    try {
      const names = (JSON.parse(body.toString('utf8')) as { keys: { name: string }[] }).keys.map((k) => k.name);
      for (const k of decodeBundle(body, new Set(names)).values()) keepReferenced(k);
      result.bundlesKept++;
    } catch {
      if (b.lastModified < graceSince) oldBundles.push(b.key);
    }
  });
  const projects = await list('projects');
  const oldProjects = projects.filter((x) => x.lastModified < keepSince).map((x) => x.key);
  result.projectsKept = projects.length - oldProjects.length;
  result.projectsDeleted = oldProjects.length;
  // old project records, keys and bundles first: from here on nothing names the content swept below
  await del(oldProjects);
  await del(old);
  await del(oldBundles);
  result.keysDeleted = old.length;
  result.bundlesDeleted = oldBundles.length;
  for (const area of ['packs', 'objects'] as const) {
    const doomed: string[] = [];
    for (const x of await list(area)) {
      if (live.has(x.key) || x.lastModified >= graceSince) {
        result.kept[area]++;
        result.kept.bytes += x.size;
      } else {
        doomed.push(x.key);
        result.deleted[area]++;
        result.deleted.bytes += x.size;
      }
    }
    await del(doomed);
  }
  return result;
}
