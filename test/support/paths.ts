import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function repoRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

/** The velo that ships: the bundle's bin (scripts/bundle.mjs, built by globalSetup after tsc). */
export function veloBin(): string {
  return join(repoRoot(), 'dist', 'bundle', 'start.cjs');
}
