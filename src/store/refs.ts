/**
 * Refs: what the index holds that cannot be recomputed from the objects and
 * trees — package/snapshot keys → trees, and the registered projects (the GC
 * roots) with the keys they use — kept also as one small file per key and
 * per project under refs/ (as git keeps refs), each written to tmp/ and
 * renamed into place, so a reader sees the old file or the new one, never a
 * part. index.db can be lost or damaged; `rebuildIndex` (indexRecovery.ts)
 * puts it back from these files with nothing lost (docs/FORMAT.md).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode, fsError } from '../errors.js';
import { isDigest } from './hash.js';
import { writeFileAtomic } from './atomicWrite.js';
import type { KeyRecord, ProjectRecord } from './keys.js';
import type { Store } from './store.js';

/** A key: what KeyRecord says but when it was last used (the index keeps that). */
export type KeyRef = Omit<KeyRecord, 'used'>;

/** A registered project (a GC root) and the keys it uses. */
export interface ProjectRef extends ProjectRecord {
  keys: string[];
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function keyRefPath(home: string, name: string): string {
  const h = sha256(name);
  return join(home, 'refs', 'keys', h.slice(0, 2), h.slice(2));
}

export function projectRefPath(home: string, path: string, ecosystem: string): string {
  return join(home, 'refs', 'projects', sha256(`${path}\0${ecosystem}`));
}

function writeRefFile(store: Store, path: string, value: object): void {
  writeFileAtomic(path, JSON.stringify(value) + '\n', store.tmpPath('ref'));
}

function removeRefFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw fsError(err, `cannot remove ${path}`);
  }
}

export function writeKeyRef(store: Store, ref: KeyRef): void {
  writeRefFile(store, keyRefPath(store.home, ref.name), ref);
}

export function removeKeyRef(store: Store, name: string): void {
  removeRefFile(keyRefPath(store.home, name));
}

export function writeProjectRef(store: Store, ref: ProjectRef): void {
  writeRefFile(store, projectRefPath(store.home, ref.path, ref.ecosystem), ref);
}

export function removeProjectRef(store: Store, path: string, ecosystem: string): void {
  removeRefFile(projectRefPath(store.home, path, ecosystem));
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/** A key ref, or undefined when absent or unreadable (a damaged ref is a cache miss). */
export function readKeyRef(home: string, name: string): KeyRef | undefined {
  const ref = parseKeyRef(keyRefPath(home, name));
  return ref?.name === name ? ref : undefined;
}

function parseKeyRef(path: string): KeyRef | undefined {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    const ref = { name: str(v.name), tree: str(v.tree), kind: str(v.kind), logicalBytes: num(v.logicalBytes), files: num(v.files), created: num(v.created) };
    return ref.name !== '' && isDigest(ref.tree) ? ref : undefined;
  } catch {
    return undefined;
  }
}

function parseProjectRef(path: string): ProjectRef | undefined {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    const ref: ProjectRef = {
      path: str(v.path),
      ecosystem: str(v.ecosystem),
      tree: str(v.tree),
      method: str(v.method),
      projection: str(v.projection) || 'link',
      logicalBytes: num(v.logicalBytes),
      files: num(v.files),
      packages: num(v.packages),
      updated: num(v.updated),
      keys: Array.isArray(v.keys) ? v.keys.filter((k): k is string => typeof k === 'string') : [],
    };
    return ref.path.startsWith('/') && ref.ecosystem !== '' && isDigest(ref.tree) ? ref : undefined;
  } catch {
    return undefined;
  }
}

export interface RefScan<T> {
  refs: T[];
  /** files under refs/ that are not readable refs (left alone; verify reports them) */
  unreadable: string[];
}

function listFiles(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => !n.startsWith('.'));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw fsError(err, `cannot read ${dir}`);
  }
}

export function scanKeyRefs(home: string): RefScan<KeyRef> {
  const out: RefScan<KeyRef> = { refs: [], unreadable: [] };
  const root = join(home, 'refs', 'keys');
  for (const prefix of listFiles(root)) {
    for (const name of listFiles(join(root, prefix))) {
      const path = join(root, prefix, name);
      const ref = parseKeyRef(path);
      if (ref && keyRefPath(home, ref.name) === path) out.refs.push(ref);
      else out.unreadable.push(path);
    }
  }
  return out;
}

/** How many project ref files there are (a readdir, nothing parsed). */
export function countProjectRefs(home: string): number {
  return listFiles(join(home, 'refs', 'projects')).length;
}

export function scanProjectRefs(home: string): RefScan<ProjectRef> {
  const out: RefScan<ProjectRef> = { refs: [], unreadable: [] };
  const root = join(home, 'refs', 'projects');
  for (const name of listFiles(root)) {
    const path = join(root, name);
    const ref = parseProjectRef(path);
    if (ref && projectRefPath(home, ref.path, ref.ecosystem) === path) out.refs.push(ref);
    else out.unreadable.push(path);
  }
  return out;
}
