/**
 * An environment without its path: everything in it that does not name
 * where it lives (the distributions' shared files, INSTALLER, most RECORDs,
 * the venv's python links, …) is one tree, the same for every checkout that
 * installs the same distributions with the same venv — recorded once, under
 * a key of those, and linked as it is. The few files that name the path
 * (launchers' shebangs, the RECORDs that hash them, activate scripts) are
 * remade per environment from the store (their recipe is recorded beside
 * the tree) and written into the staging directory before the swap.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { VeloError } from '../errors.js';
import { getKey, setKey } from '../store/keys.js';
import type { Store } from '../store/store.js';
import type { TreeEntry } from '../store/treeFormat.js';
import { putTree, readTree } from '../store/trees.js';
import { writeBufferToStore } from '../store/writeBufferToStore.js';
import { recordFor, type PerEnvFile, type Remake } from './assembleEnvironment.js';
import { withShebang } from './shebang.js';

const LAYOUT = 'velo-uv-envbase-1';

export interface EnvBaseKeys {
  /** the tree of everything path-independent */
  base: string;
  /** recipe.json: how to remake the rest */
  recipe: string;
}

export function envBaseKeys(distKeys: string[], templateKey: string): EnvBaseKeys {
  const h = createHash('sha256').update(JSON.stringify({ layout: LAYOUT, distKeys: [...distKeys].sort(), templateKey })).digest('hex').slice(0, 40);
  return { base: `uv-envbase:${h}`, recipe: `uv-envrecipe:${h}` };
}

interface RecipeItem {
  rel: string;
  kind: 'file' | 'symlink';
  mode: number;
  remake: Remake;
}

/** Record the path-independent tree and the recipe for the rest; returns the base tree. */
export interface EnvBaseCounts {
  files: number;
  pycs: number;
  conflicts: string[];
}

export function saveEnvBase(store: Store, keys: EnvBaseKeys, independent: TreeEntry[], dependent: PerEnvFile[], counts: EnvBaseCounts): string {
  const tree = putTree(store, independent);
  const recipe: RecipeItem[] = dependent.map((f) => {
    if (f.kind === 'dir' || !f.remake) throw new Error(`${f.rel} has no recipe`);
    return { rel: f.rel, kind: f.kind, mode: f.mode, remake: f.remake };
  });
  const added = writeBufferToStore(store, Buffer.from(JSON.stringify({ layout: LAYOUT, recipe, counts })), false);
  store.flushCounters();
  setKey(store, keys.base, tree, { kind: 'uv-envbase' });
  setKey(store, keys.recipe, putTree(store, [{ path: 'recipe.json', kind: 'file', size: added.size, digest: added.digest }]), { kind: 'uv-envbase' });
  return tree;
}

function readObject(store: Store, o: { digest: string; size: number }, exec = false): Buffer {
  const data = readFileSync(store.objectPath(o.digest, exec));
  if (data.length !== o.size) throw new VeloError('CORRUPT_OBJECT', `store object ${o.digest} has the wrong size`);
  return data;
}

/**
 * The recorded base tree and the path-dependent files remade for `envDir`;
 * undefined when nothing is recorded (or something of it is gone).
 * `venv`: the recorded venv relocated to envDir.
 */
export function loadEnvBase(store: Store, keys: EnvBaseKeys, envDir: string, venv: PerEnvFile[]): { tree: string; dependent: PerEnvFile[]; counts: EnvBaseCounts } | undefined {
  const tree = getKey(store, keys.base);
  const recipeTree = getKey(store, keys.recipe);
  if (!tree || !recipeTree) return undefined;
  try {
    const entry = readTree(store, recipeTree).entries.find((e) => e.path === 'recipe.json');
    if (!entry) return undefined;
    const doc = JSON.parse(readObject(store, entry).toString('utf8')) as { layout: string; recipe: RecipeItem[]; counts: EnvBaseCounts };
    if (doc.layout !== LAYOUT) return undefined;
    const python = join(envDir, 'bin', 'python');
    const venvByRel = new Map(venv.map((f) => [f.rel, f]));
    const launchers = new Map<string, Buffer>();
    const dependent: PerEnvFile[] = [];
    // launchers first: RECORDs hash them
    for (const item of doc.recipe) {
      if (!('launcher' in item.remake)) continue;
      const data = withShebang(readObject(store, item.remake.launcher, (item.mode & 0o111) !== 0), python);
      launchers.set(item.rel, data);
      dependent.push({ rel: item.rel, kind: 'file', data, mode: item.mode });
    }
    for (const item of doc.recipe) {
      const r = item.remake;
      if ('record' in r) {
        const byRecordPath = new Map<string, Buffer>();
        for (const row of r.rows) {
          const data = launchers.get(row.launcher);
          if (data) byRecordPath.set(row.recordPath, data);
        }
        dependent.push({ ...recordFor(readObject(store, r.record).toString('utf8'), byRecordPath, item.rel), mode: item.mode });
      } else if ('venv' in r) {
        const f = venvByRel.get(item.rel);
        if (!f || f.kind !== item.kind) return undefined;
        dependent.push(f);
      }
    }
    return { tree, dependent, counts: doc.counts };
  } catch (err) {
    if (err instanceof VeloError || (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Write the path-dependent files into the directory that becomes the environment. */
export function writeDependentFiles(dir: string, files: PerEnvFile[]): void {
  for (const f of files) {
    if (isAbsolute(f.rel) || f.rel.split('/').some((p) => p === '..' || p === '.' || p === '')) {
      throw new VeloError('UNSAFE_PATH', `refusing to write ${JSON.stringify(f.rel)} into the environment`);
    }
    const abs = join(dir, f.rel);
    mkdirSync(dirname(abs), { recursive: true });
    if (f.kind === 'symlink') symlinkSync(f.target!, abs);
    else if (f.kind === 'file') writeFileSync(abs, f.data!, { mode: f.mode, flag: 'wx' });
  }
}
