/**
 * Where a distribution's bytecode lives in the store: a tree of its own
 * under `uv-pyc:<name>==<version>@<digest>` (the package key names the
 * interpreter already), which grows as modules are compiled (distBytecode.ts).
 * The distribution's own tree never changes.
 */
import { getKey } from '../store/keys.js';
import type { Store } from '../store/store.js';
import type { TreeEntry } from '../store/treeFormat.js';
import { readTree } from '../store/trees.js';

export const BYTECODE_KIND = 'uv-pyc';

export function bytecodeKey(distKey: string): string {
  return `${BYTECODE_KIND}:${distKey.replace(/^uv:/, '')}`;
}

/** The stored bytecode of a distribution: file entries, paths from the environment root. */
export function loadBytecode(store: Store, distKey: string): TreeEntry[] {
  const tree = getKey(store, bytecodeKey(distKey));
  return tree ? bytecodeEntries(store, tree) : [];
}

/** The file entries of a bytecode tree (its key's, or one whose key is not set: a lazy fill's). */
export function bytecodeEntries(store: Store, tree: string): TreeEntry[] {
  return readTree(store, tree).entries.filter((e) => e.kind === 'file');
}

/** Does this command compile every module (uv's --compile-bytecode / UV_COMPILE_BYTECODE, or a mount)? */
export function compilesEverything(flag: boolean, env: NodeJS.ProcessEnv, projection: string): boolean {
  return flag || /^(1|true|yes|on)$/i.test(env.UV_COMPILE_BYTECODE ?? '') || projection === 'mount';
}
