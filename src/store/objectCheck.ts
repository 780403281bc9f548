/**
 * Hash the objects a tree names before they are laid out (what `--force`
 * asks for). The cheap guard — size and the fixed mtime — misses an object
 * edited in place through a hardlink whose size and mtime were put back;
 * BLAKE3 of the bytes does not. Each object is hashed once per process.
 */
import { lstatSync } from 'node:fs';
import { hashFile } from './hash.js';
import type { ParsedEntry } from './treeFormat.js';
import type { Store } from './store.js';

/** Indices of the file entries whose object is missing or whose bytes do not hash to its name. */
export async function unsoundObjects(store: Store, entries: ParsedEntry[]): Promise<number[]> {
  const bad: number[] = [];
  const badIds = new Set<string>();
  for (const e of entries) {
    if (e.kind !== 'file') continue;
    const id = e.digest + (e.exec ? 'x' : '');
    if (badIds.has(id)) {
      bad.push(e.index);
      continue;
    }
    if (store.verifiedObjects.has(id)) continue;
    const path = store.objectPath(e.digest, e.exec);
    const st = lstatSync(path, { throwIfNoEntry: false });
    const sound = st !== undefined && st.isFile() && st.size === e.size && (await hashFile(path, e.size)) === e.digest;
    if (sound) store.verifiedObjects.add(id);
    else {
      badIds.add(id);
      bad.push(e.index);
    }
  }
  return bad;
}
