/**
 * A tree's entries seen as a target dir, for the walk (targetWalk.ts) and
 * the freshness check (freshness.ts): what a mount of the tree will show,
 * read before it is mounted. Files are read from their store objects.
 */
import { readFileSync } from 'node:fs';
import type { TreeEntry } from '../store/treeFormat.js';
import type { Store } from '../store/store.js';
import type { FreshnessView } from './freshness.js';
import type { WalkSource } from './targetWalk.js';

function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

function nameOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Entries by path, and each directory's children. Directories an entry implies but the list lacks count as directories. */
export class TreeIndex {
  readonly byPath = new Map<string, TreeEntry>();
  private readonly children = new Map<string, Set<string>>();

  constructor(entries: Iterable<TreeEntry>) {
    this.children.set('', new Set());
    for (const e of entries) this.add(e);
  }

  add(e: TreeEntry): void {
    if (e.path === '') return;
    this.byPath.set(e.path, e);
    if (e.kind === 'dir' && !this.children.has(e.path)) this.children.set(e.path, new Set());
    let path = e.path;
    for (;;) {
      const parent = parentOf(path);
      let set = this.children.get(parent);
      const existed = set !== undefined;
      if (!set) {
        set = new Set();
        this.children.set(parent, set);
      }
      set.add(nameOf(path));
      if (existed || parent === '') break;
      path = parent;
    }
  }

  delete(path: string): void {
    const e = this.byPath.get(path);
    if (!e) return;
    this.byPath.delete(path);
    this.children.get(parentOf(path))?.delete(nameOf(path));
  }

  isDir(path: string): boolean {
    return path === '' || this.children.has(path);
  }

  list(dir: string): { name: string; dir: boolean }[] {
    const names = this.children.get(dir);
    if (!names) throw new Error(`not a directory in the tree: ${dir}`);
    return [...names].map((name) => {
      const path = dir === '' ? name : `${dir}/${name}`;
      return { name, dir: this.isDir(path) };
    });
  }

  /** every entry, directories included (the root excepted) */
  entries(): TreeEntry[] {
    const out: TreeEntry[] = [];
    for (const [dir] of this.children) if (dir !== '' && !this.byPath.has(dir)) out.push({ path: dir, kind: 'dir', mtimeNs: 0n });
    out.push(...this.byPath.values());
    return out;
  }
}

/** The walk over a tree: lstat answers as a mount of the tree gives them (files 0644/0755; no inode numbers). */
export function treeWalkSource(index: TreeIndex): WalkSource {
  return {
    list: (rel) => index.list(rel),
    isDir: (rel) => index.isDir(rel),
    stat(rel) {
      const e = index.byPath.get(rel);
      const mtimeNs = e?.mtimeNs ?? 0n;
      if (!e || e.kind === 'dir') return { kind: 'dir', size: 0, mtimeNs, exec: false, dev: 0n, ino: 0n };
      if (e.kind === 'symlink') return { kind: 'symlink', size: 0, mtimeNs, exec: false, dev: 0n, ino: 0n, target: e.target ?? '' };
      return { kind: 'file', size: e.size ?? 0, mtimeNs, exec: e.exec === true, dev: 0n, ino: 0n };
    },
  };
}

/** The freshness check's view of a tree: file contents from the store's objects. */
export function treeFreshnessView(store: Store, index: TreeIndex): FreshnessView {
  return {
    source: treeWalkSource(index),
    read(rel) {
      const e = index.byPath.get(rel);
      if (e?.kind !== 'file' || !e.digest) return undefined;
      try {
        return readFileSync(store.objectPath(e.digest, e.exec === true));
      } catch {
        return undefined;
      }
    },
    mtimeNs(rel) {
      const e = index.byPath.get(rel);
      return e && e.kind !== 'dir' ? e.mtimeNs : undefined;
    },
  };
}
