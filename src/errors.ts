/**
 * Typed errors: src/ throws these, cli/ renders them. `code` is stable and
 * machine-readable; `exitCode` is what the CLI exits with.
 */
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
    return new VeloError('NO_SPACE', `${what}: the disk is full (${code})`, { cause: err });
  }
  if (code === 'ENOENT') return new VeloError('NOT_FOUND', `${what}: ${detail}`, { cause: err });
  return new VeloError('IO', `${what}: ${detail}`, { cause: err });
}

/**
 * Errors that reach the top without being typed (SQLite's, a stray errno):
 * give them the code and message a user can act on.
 */
export function toVeloError(err: unknown): VeloError | undefined {
  if (err instanceof VeloError) return err;
  const e = err as { code?: string; errcode?: number; message?: string };
  if (e?.code === 'ERR_SQLITE_ERROR') {
    if (e.errcode === 13 || /disk is full/.test(String(e.message))) {
      return new VeloError('NO_SPACE', `the store's index cannot grow: the disk is full (ENOSPC)`, { cause: err });
    }
    if (e.errcode === 5 || e.errcode === 6) return new VeloError('LOCKED', `the store's index is locked by another process: ${e.message}`, { cause: err });
    return new VeloError('STORE_FORMAT', `the store's index failed: ${e.message}`, { cause: err });
  }
  if (e?.code === 'ENOSPC' || e?.code === 'EDQUOT') return fsError(err, 'write failed');
  return undefined;
}
