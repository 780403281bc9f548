/**
 * The link strategy, decided once: `auto` probes each (store filesystem,
 * destination filesystem) pair once and remembers the answer in the index —
 * reflink where the filesystem clones, else hardlink on the same
 * filesystem, else copy. Per-file fallbacks (EXDEV, EMLINK, EPERM) happen
 * in the linkers; this only picks the first choice.
 */
import { constants, copyFileSync, linkSync, mkdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { LinkMethod } from '../config.js';
import type { Store } from '../store/store.js';

export type ConcreteMethod = Exclude<LinkMethod, 'auto'>;

function tryRemove(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* not there */
  }
}

/** Actually try reflink, then hardlink, from the store into destDir. */
export function probeMethod(store: Store, destDir: string): ConcreteMethod {
  mkdirSync(destDir, { recursive: true });
  const src = store.tmpPath('probe');
  const dst = join(destDir, `.velo-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  writeFileSync(src, 'velo probe\n');
  try {
    try {
      copyFileSync(src, dst, constants.COPYFILE_FICLONE_FORCE);
      return 'reflink';
    } catch {
      tryRemove(dst);
    }
    try {
      linkSync(src, dst);
      return 'hardlink';
    } catch {
      return 'copy';
    }
  } finally {
    tryRemove(dst);
    tryRemove(src);
  }
}

export function resolveMethod(store: Store, requested: LinkMethod, destDir: string): ConcreteMethod {
  if (requested !== 'auto') return requested;
  mkdirSync(destDir, { recursive: true });
  const pair = `${statSync(join(store.home, 'objects')).dev}:${statSync(destDir).dev}`;
  const row = store.index.prepare('SELECT method FROM probes WHERE pair = ?').get(pair) as { method: ConcreteMethod } | undefined;
  if (row) return row.method;
  const method = probeMethod(store, destDir);
  store.index
    .prepare('INSERT INTO probes(pair, method, probed) VALUES(?, ?, ?) ON CONFLICT(pair) DO UPDATE SET method = excluded.method, probed = excluded.probed')
    .run(pair, method, Date.now());
  return method;
}
