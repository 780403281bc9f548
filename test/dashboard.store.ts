/**
 * A real store for the dashboard tests, made with the store's own verbs:
 * three "npm packages" ingested and keyed, two projects whose node_modules
 * are grafted from them and materialized, a third project (a plain tree),
 * and one directory ingested that no project uses (what gc reclaims).
 *
 *   project one:   a, b            (node_modules)
 *   project two:   a, b, c         (node_modules)
 *   project three: its own files   ('tree' ecosystem, via velo store materialize's row)
 *
 * So one's unique bytes are 0 and its shared bytes a + b; two's unique bytes
 * are c; three's are all unique; a and b are the most shared packages.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { Store } from '../src/store/store.js';
import { ingestDir } from '../src/store/addFilesFromDir.js';
import { graftTrees, readTree } from '../src/store/trees.js';
import { registerProject, setKey } from '../src/store/keys.js';
import { materialize } from '../src/projection/materialize.js';

export interface DashboardStore {
  home: string;
  projects: { one: string; two: string; three: string };
  /** logical sizes */
  sizes: { a: number; b: number; c: number; three: number; orphan: number };
}

function writePackage(dir: string, name: string, version: string, bytes: number): void {
  mkdirSync(join(dir, 'lib'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version }) + '\n');
  const body = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) body[i] = (i * 7 + name.charCodeAt(0)) & 0xff;
  writeFileSync(join(dir, 'lib', 'index.js'), body);
}

export async function makeDashboardStore(root: string): Promise<DashboardStore> {
  const home = join(root, 'store');
  const store = Store.open(home);
  try {
    const src = join(root, 'src');
    const trees: Record<string, string> = {};
    const sizes = { a: 0, b: 0, c: 0, three: 0, orphan: 0 };
    for (const [name, bytes] of [
      ['a', 30_000],
      ['b', 20_000],
      ['c', 5_000],
    ] as const) {
      writePackage(join(src, name), `velo-dash-${name}`, '1.0.0', bytes);
      const r = await ingestDir(store, join(src, name));
      trees[name] = r.tree;
      sizes[name] = r.bytes;
      setKey(store, `npm:sha512-${name}`, r.tree, { kind: 'npm', logicalBytes: r.bytes, files: r.files });
    }
    const projects = { one: join(root, 'one'), two: join(root, 'two'), three: join(root, 'three') };
    for (const [p, names] of [
      ['one', ['a', 'b']],
      ['two', ['a', 'b', 'c']],
    ] as const) {
      const tree = graftTrees(
        store,
        names.map((n) => ({ prefix: `velo-dash-${n}`, tree: trees[n]! })),
      );
      const dest = join(projects[p], 'node_modules');
      mkdirSync(projects[p], { recursive: true });
      writeFileSync(join(projects[p], 'package.json'), JSON.stringify({ name: p, version: '1.0.0' }) + '\n');
      const m = await materialize(store, tree, dest, { within: dirname(dest), method: 'copy' });
      registerProject(store, {
        path: dest,
        ecosystem: 'npm',
        tree,
        method: m.method,
        logicalBytes: m.logicalBytes,
        files: m.files,
        packages: names.length,
        keys: names.map((n) => `npm:sha512-${n}`),
      });
    }
    mkdirSync(join(src, 'three'), { recursive: true });
    writeFileSync(join(src, 'three', 'data.bin'), Buffer.alloc(12_345, 3));
    const three = await ingestDir(store, join(src, 'three'));
    sizes.three = three.bytes;
    const m3 = await materialize(store, three.tree, projects.three, { within: dirname(projects.three), method: 'copy' });
    registerProject(store, { path: projects.three, ecosystem: 'tree', tree: three.tree, method: m3.method, logicalBytes: m3.logicalBytes, files: m3.files });
    mkdirSync(join(src, 'orphan'), { recursive: true });
    writeFileSync(join(src, 'orphan', 'garbage.bin'), Buffer.alloc(7_777, 9));
    const orphan = await ingestDir(store, join(src, 'orphan'));
    sizes.orphan = orphan.bytes;
    if (readTree(store, orphan.tree).logicalSize !== 7_777) throw new Error('unexpected orphan tree');
    return { home, projects, sizes };
  } finally {
    store.close();
  }
}
