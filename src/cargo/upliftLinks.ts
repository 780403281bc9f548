/**
 * Cargo "uplifts" what a build is for: the binary, library or build script
 * it compiled as `deps/<name>-<hash>` (or `<name>-<hash>` beside it) is
 * hardlinked to a plain name — `debug/<bin>`, `debug/lib<name>.rlib`,
 * `debug/examples/<example>`, `debug/build/<pkg>-<hash>/build-script-build`
 * — and cargo does this on every build, fresh units included. Through an
 * overlay, link() of a file of the lower layer first copies the file up
 * whole: every build in a mounted target would cost the uplifted files'
 * bytes again (measured on the fixture: 20 MB in the upper layer of a
 * target whose every unit was fresh).
 *
 * Cargo skips the link when the two paths already are the same file
 * (cargo-util's link_or_copy asks same_file::is_same_file, which follows
 * symlinks). So in a tree that is about to be mounted, every uplifted file
 * whose bytes, mode and mtime equal a hash-named file's is made a relative
 * symlink to it: reading it gives the same bytes, running it runs the same
 * program, and cargo leaves it alone. When cargo rebuilds the unit it
 * writes the hash-named file; the symlink still points at it.
 */
import type { TreeEntry } from '../store/treeFormat.js';
import { TreeIndex, treeWalkSource } from './targetTreeSource.js';
import { sourceProfileDirs } from './targetWalk.js';

/** `<name>-<16 hex>` with an optional extension: the names cargo gives the artifacts it uplifts from. */
const HASHED = /-[0-9a-f]{16}(\.[A-Za-z0-9]+)?$/;

function sameBytesKey(e: TreeEntry): string {
  return `${e.digest}\0${e.exec === true ? 1 : 0}\0${e.size}\0${e.mtimeNs}`;
}

function filesIn(index: TreeIndex, dir: string): TreeEntry[] {
  if (!index.isDir(dir)) return [];
  return index
    .list(dir)
    .filter((c) => !c.dir)
    .map((c) => index.byPath.get(`${dir}/${c.name}`)!)
    .filter((e) => e.kind === 'file');
}

function byContent(files: TreeEntry[]): Map<string, TreeEntry> {
  const out = new Map<string, TreeEntry>();
  for (const f of files) if (HASHED.test(f.path.slice(f.path.lastIndexOf('/') + 1))) out.set(sameBytesKey(f), f);
  return out;
}

/**
 * Replace uplifted copies by symlinks to the files they were linked from,
 * in place. Returns the number of files replaced.
 */
export function linkUplifts(index: TreeIndex): number {
  let replaced = 0;
  const relink = (dir: string, candidates: TreeEntry[], originals: Map<string, TreeEntry>, prefix: string): void => {
    for (const f of candidates) {
      const name = f.path.slice(dir.length + 1);
      if (HASHED.test(name)) continue;
      const original = originals.get(sameBytesKey(f));
      if (!original || original.path === f.path) continue;
      index.add({ path: f.path, kind: 'symlink', target: prefix + original.path.slice(original.path.lastIndexOf('/') + 1), mtimeNs: f.mtimeNs ?? 0n });
      replaced++;
    }
  };
  for (const profile of sourceProfileDirs(treeWalkSource(index))) {
    // debug/<bin>, debug/lib<name>.rlib, …: linked from debug/deps/
    relink(profile, filesIn(index, profile), byContent(filesIn(index, `${profile}/deps`)), 'deps/');
    // debug/examples/<example>: linked from debug/examples/<example>-<hash>
    const examples = filesIn(index, `${profile}/examples`);
    relink(`${profile}/examples`, examples, byContent(examples), '');
    // debug/build/<pkg>-<hash>/build-script-build: linked from build_script_build-<hash> beside it
    if (index.isDir(`${profile}/build`)) {
      for (const unit of index.list(`${profile}/build`)) {
        if (!unit.dir) continue;
        const dir = `${profile}/build/${unit.name}`;
        const files = filesIn(index, dir);
        relink(dir, files, byContent(files), '');
      }
    }
  }
  return replaced;
}
