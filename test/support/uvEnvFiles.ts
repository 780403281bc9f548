/**
 * Compare two Python environments file by file, as the uv tests do: the
 * same files (velo's bytecode and .velo-state aside), the same symlinks and
 * exec bits, the same bytes once the one path that differs is swapped
 * (RECORD aside: its launcher rows hash files that name the environment).
 */
import { lstatSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';

/** Every file under dir (relative), without __pycache__ and .velo-state. */
export function listEnvFiles(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, encoding: 'utf8' }) as string[])
    .filter((r) => !r.split('/').includes('__pycache__') && r !== '.velo-state' && !lstatSync(join(dir, r)).isDirectory())
    .sort();
}

/** mine has theirs's files, kinds, exec bits and bytes, with `from` (in theirs's bytes) read as `to`. */
export function expectSameEnvFiles(mine: string, theirs: string, from: string, to: string): void {
  const files = listEnvFiles(theirs);
  expect(listEnvFiles(mine)).toEqual(files);
  for (const rel of files) {
    const a = lstatSync(join(theirs, rel));
    const b = lstatSync(join(mine, rel));
    expect(b.isSymbolicLink(), rel).toBe(a.isSymbolicLink());
    expect((b.mode & 0o111) !== 0, `exec bit of ${rel}`).toBe((a.mode & 0o111) !== 0);
    if (a.isSymbolicLink() || rel.endsWith('.dist-info/RECORD')) continue; // RECORD: launcher hashes name the environment
    expect(readFileSync(join(mine, rel), 'latin1'), rel).toBe(readFileSync(join(theirs, rel), 'latin1').split(from).join(to));
  }
}
