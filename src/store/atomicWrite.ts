/**
 * Write a small file so a reader sees the old content or the new, never a
 * part: written under a temporary name in the same filesystem, then renamed.
 */
import { mkdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { errnoCode, fsError } from '../errors.js';

/** tmp must be on path's filesystem; path's directory is created when missing. */
export function writeFileAtomic(path: string, data: string, tmp: string, mode?: number): void {
  try {
    writeFileSync(tmp, data, mode === undefined ? undefined : { mode });
    try {
      renameSync(tmp, path);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
      mkdirSync(dirname(path), { recursive: true });
      renameSync(tmp, path);
    }
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      /* never written */
    }
    throw fsError(err, `cannot write ${path}`);
  }
}
