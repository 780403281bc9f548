/**
 * Where things live inside a store directory (docs/FORMAT.md).
 */
import { join } from 'node:path';

/** Every object's mtime, in seconds: npm's fixed mtime for packed files. */
export const OBJECT_MTIME_S = 499162500;
export const OBJECT_MTIME_MS = OBJECT_MTIME_S * 1000;
export const OBJECT_MODE = 0o444;
export const OBJECT_EXEC_MODE = 0o555;

export function objectRelPath(digest: string, exec: boolean): string {
  return `objects/${digest.slice(0, 2)}/${digest.slice(2)}${exec ? 'x' : ''}`;
}

export function objectPathIn(home: string, digest: string, exec: boolean): string {
  return join(home, 'objects', digest.slice(0, 2), digest.slice(2) + (exec ? 'x' : ''));
}

export function treePathIn(home: string, digest: string): string {
  return join(home, 'trees', digest.slice(0, 2), digest.slice(2));
}

export const STORE_DIRS = ['objects', 'trees', 'refs', 'tmp', 'quarantine', 'locks'] as const;
