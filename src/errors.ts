/**
 * Typed errors: src/ throws these, cli/ renders them. `code` is stable and
 * machine-readable; `exitCode` is what the CLI exits with.
 */
import { statfsSync } from 'node:fs';

export type VeloErrorCode =
  | 'USAGE'
  | 'NOT_FOUND'
  | 'BAD_INPUT'
  | 'UNSUPPORTED_FILE'
  | 'CORRUPT_TREE'
  | 'CORRUPT_OBJECT'
  | 'INTEGRITY'
  | 'UNSAFE_PATH'
  | 'LOCKED'
  | 'STORE_FORMAT'
  | 'IO'
  | 'NO_SPACE'
  | 'NETWORK'
  | 'TOOL_FAILED'
  | 'LOCKFILE'
  | 'FUSE_UNAVAILABLE'
  | 'REFUSED';

const EXIT_CODES: Record<VeloErrorCode, number> = {
  USAGE: 2,
  NOT_FOUND: 3,
  BAD_INPUT: 4,
  UNSUPPORTED_FILE: 4,
  CORRUPT_TREE: 5,
  CORRUPT_OBJECT: 5,
  INTEGRITY: 6,
  UNSAFE_PATH: 6,
  LOCKED: 7,
  STORE_FORMAT: 8,
  IO: 10,
  NO_SPACE: 11,
  NETWORK: 12,
  TOOL_FAILED: 13,
  LOCKFILE: 14,
  FUSE_UNAVAILABLE: 15,
  REFUSED: 16,
};

export class VeloError extends Error {
  readonly code: VeloErrorCode;
  readonly exitCode: number;
  readonly hint: string | undefined;
  constructor(code: VeloErrorCode, message: string, options?: { cause?: unknown; hint?: string; exitCode?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VeloError';
    this.code = code;
    this.hint = options?.hint;
    this.exitCode = options?.exitCode ?? EXIT_CODES[code];
  }
}

/** errno-style error from node:fs */
export interface ErrnoError extends Error {
  code?: string;
  errno?: number;
  path?: string;
  syscall?: string;
}

export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof (err as ErrnoError).code === 'string'
    ? (err as ErrnoError).code
    : undefined;
}

/** Turn a filesystem error into a VeloError with a message a user can act on. */
export function fsError(err: unknown, what: string): VeloError {
  if (err instanceof VeloError) return err;
  const code = errnoCode(err);
  const detail = err instanceof Error ? err.message : String(err);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new VeloError('NO_SPACE', `${what}: the disk is full (${code})`, { cause: err, hint: DISK_FULL_HINT });
  }
  if (code === 'ENOENT') return new VeloError('NOT_FOUND', `${what}: ${detail}`, { cause: err });
  return new VeloError('IO', `${what}: ${detail}`, { cause: err });
}

export const DISK_FULL_HINT = 'free some space on that disk, or run velo gc to delete what no project uses';

/** Directories whose filesystem a SQLite I/O error is checked against (the stores this process opened). */
const watchedDirs = new Set<string>();

export function watchDiskOf(dir: string): void {
  watchedDirs.add(dir);
}

/** Bytes an unprivileged writer can still use on the filesystem of dir (undefined when unknown). */
export function freeBytes(dir: string): number | undefined {
  try {
    const s = statfsSync(dir);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return undefined;
  }
}

/** Less than this free is a full disk as far as SQLite is concerned (it needs a few pages for the WAL and its index). */
const NEARLY_FULL = 256 * 1024;

/**
 * SQLite reports a full disk as SQLITE_FULL, or — when it cannot even create
 * its shared-memory or WAL file — as a generic disk I/O error. Either, on a
 * filesystem with next to no space left, is a full disk (exit 11), not a
 * damaged index.
 */
export function diskFullError(err: unknown, dir: string | undefined, what: string): VeloError | undefined {
  const e = err as { code?: string; errcode?: number; message?: string };
  const code = errnoCode(err);
  if (code === 'ENOSPC' || code === 'EDQUOT') return fsError(err, what);
  if (e?.code !== 'ERR_SQLITE_ERROR') return undefined;
  const primary = typeof e.errcode === 'number' ? e.errcode & 0xff : -1;
  const dirs = dir === undefined ? [...watchedDirs] : [dir];
  const full = primary === 13 || /disk is full/.test(String(e.message)) || (primary === 10 && dirs.some((d) => (freeBytes(d) ?? Infinity) < NEARLY_FULL));
  if (!full) return undefined;
  return new VeloError('NO_SPACE', `${what}: the disk is full (ENOSPC)`, { cause: err, hint: DISK_FULL_HINT });
}

/**
 * Errors that reach the top without being typed (SQLite's, a stray errno):
 * give them the code and message a user can act on.
 */
export function toVeloError(err: unknown): VeloError | undefined {
  if (err instanceof VeloError) return err;
  const e = err as { code?: string; errcode?: number; message?: string };
  if (e?.code === 'ERR_SQLITE_ERROR') {
    const full = diskFullError(err, undefined, `the store's index cannot grow`);
    if (full) return full;
    const primary = (e.errcode ?? 0) & 0xff;
    if (primary === 5 || primary === 6) return new VeloError('LOCKED', `the store's index is locked by another process: ${e.message}`, { cause: err });
    if (primary === 11 || primary === 26) {
      return new VeloError('STORE_FORMAT', `the store's index is damaged: ${e.message}`, {
        cause: err,
        hint: 'run velo verify --repair: it rebuilds the index from the store (refs/), losing nothing',
      });
    }
    return new VeloError('STORE_FORMAT', `the store's index failed: ${e.message}`, { cause: err });
  }
  if (e?.code === 'ENOSPC' || e?.code === 'EDQUOT') return fsError(err, 'write failed');
  return undefined;
}
