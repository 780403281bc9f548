/**
 * One copy on disk: uv unpacks every wheel into its cache (archive-v0/<id>/)
 * and hardlinks environments from there; velo stores the same files as
 * objects. After velo stores a distribution uv installed, each file of uv's
 * unpacked copy that is the very file uv linked into the scratch
 * environment (same inode: the same bytes velo just hashed) is replaced by a
 * hardlink to the store's object — atomically (link beside it, rename over
 * it). From then on the bytes exist once: uv's cache, velo's store, velo's
 * environments and plain `uv sync` environments share the inode.
 *
 * Only files inside the cache's archive-v0/ are touched, only regular files,
 * only ones proven identical by inode. Files uv copied (another link mode,
 * another filesystem) or generated (RECORD, launchers) are left alone. The
 * objects are read-only with velo's fixed mtime, so files uv links from its
 * cache afterwards are too (uv does not look at either).
 */
import { linkSync, lstatSync, readdirSync, renameSync, unlinkSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { errnoCode } from '../errors.js';
import type { Store } from '../store/store.js';
import type { InstalledDistribution } from './installedDistribution.js';
import { runProcess } from './runUvProcess.js';
import type { StoredDistribution } from './storedDistribution.js';
import { tokenize, type SyncArgs } from './syncArgs.js';

export interface CacheLinkResult {
  /** cache files now hardlinks to store objects */
  files: number;
  bytes: number;
  /** why nothing was linked, when nothing could be */
  note?: string;
}

/** uv's cache directory as uv itself names it (UV_CACHE_DIR, --cache-dir, XDG …); undefined under --no-cache. */
async function uvCacheDir(uv: string, args: Pick<SyncArgs, 'original'>, env: NodeJS.ProcessEnv, cwd: string): Promise<string | undefined> {
  const extra: string[] = [];
  for (const t of tokenize(args.original)) {
    if (t.name === '--no-cache' || t.name === '-n') return undefined;
    if (t.name === '--cache-dir') extra.push(...t.raw);
  }
  if (env.UV_NO_CACHE && env.UV_NO_CACHE !== '0' && env.UV_NO_CACHE !== 'false') return undefined;
  const r = await runProcess(uv, ['cache', 'dir', ...extra], { cwd, env });
  const dir = r.stdout.trim();
  return r.code === 0 && dir.startsWith('/') && !dir.includes('\n') ? dir : undefined;
}

function lstatOrUndefined(path: string): BigIntStats | undefined {
  try {
    return lstatSync(path, { bigint: true });
  } catch {
    return undefined;
  }
}

/** archive-v0 entries by the .dist-info directories they hold. */
function archivesByDistInfo(archiveRoot: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let ids: string[];
  try {
    ids = readdirSync(archiveRoot);
  } catch {
    return out;
  }
  for (const id of ids) {
    let names: string[];
    try {
      if (!lstatSync(join(archiveRoot, id)).isDirectory()) continue; // a real directory of archive-v0, not a link elsewhere
      names = readdirSync(join(archiveRoot, id));
    } catch {
      continue;
    }
    for (const n of names) if (n.endsWith('.dist-info')) out.set(n, [...(out.get(n) ?? []), join(archiveRoot, id)]);
  }
  return out;
}

/** A uv run into a scratch environment: where uv's cache is (its arguments, environment, cwd) and what it installed into. */
export interface UvScratchRun {
  store: Store;
  uv: string;
  /** the user's uv arguments (where uv's cache is: --cache-dir, --no-cache) */
  args: Pick<SyncArgs, 'original'>;
  /** the environment uv ran with */
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** the scratch environment uv installed into */
  scratch: string;
}

export async function linkUvCacheToStore(o: UvScratchRun & {
  sitePackages: string;
  dists: { installed: InstalledDistribution; stored: StoredDistribution }[];
}): Promise<CacheLinkResult> {
  const result: CacheLinkResult = { files: 0, bytes: 0 };
  if (o.dists.length === 0) return result;
  const cacheDir = await uvCacheDir(o.uv, o.args, o.env, o.cwd);
  if (!cacheDir) return { ...result, note: 'uv runs without a cache' };
  const archives = archivesByDistInfo(join(cacheDir, 'archive-v0'));
  let n = 0;
  for (const { installed, stored } of o.dists) {
    const objects = new Map(stored.shared.map((e) => [e.path, e]));
    for (const entryDir of archives.get(installed.distInfo) ?? []) {
      const walk = (rel: string): void => {
        const abs = rel === '' ? entryDir : join(entryDir, rel);
        let names;
        try {
          names = readdirSync(abs, { withFileTypes: true });
        } catch {
          return;
        }
        for (const d of names) {
          const childRel = rel === '' ? d.name : `${rel}/${d.name}`;
          if (d.isDirectory()) {
            walk(childRel);
            continue;
          }
          if (!d.isFile()) continue;
          const entry = objects.get(`${o.sitePackages}/${childRel}`);
          if (!entry || entry.kind !== 'file' || !entry.digest) continue;
          const cacheFile = join(entryDir, childRel);
          const cached = lstatOrUndefined(cacheFile);
          const installedCopy = lstatOrUndefined(join(o.scratch, o.sitePackages, childRel));
          const objectPath = o.store.objectPath(entry.digest, entry.exec === true);
          const object = lstatOrUndefined(objectPath);
          // the very file uv linked into the scratch environment, whose bytes velo stored
          if (!cached || !installedCopy || !object || !cached.isFile() || cached.ino !== installedCopy.ino || cached.dev !== installedCopy.dev) continue;
          if (cached.ino === object.ino || cached.size !== object.size || cached.dev !== object.dev) continue;
          const tmp = join(entryDir, `.velo-link-${process.pid}-${n++}`);
          try {
            linkSync(objectPath, tmp);
            renameSync(tmp, cacheFile);
            result.files++;
            result.bytes += Number(object.size);
          } catch (err) {
            try {
              unlinkSync(tmp);
            } catch {
              /* not made */
            }
            if (errnoCode(err) === 'EXDEV' || errnoCode(err) === 'EMLINK') return;
            throw err;
          }
        }
      };
      walk('');
    }
  }
  return result;
}
