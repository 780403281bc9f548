import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function repoRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

export function veloBin(): string {
  return join(repoRoot(), 'dist', 'cli', 'velo.js');
}
