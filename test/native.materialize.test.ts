// The native addon's materialize(): a real tree, real objects, real files.
import { spawnSync } from 'node:child_process';
import {
  appendFileSync, chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync,
  readlinkSync, rmSync, statSync, utimesSync, writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serializeTree } from '../src/store/treeFormat.js';
import { nodeModulesEntries, objectPath, writeObjects, OBJECT_MTIME_S } from '../native/test-support/syntheticTree.mjs';
import { writeTree } from '../native/test-support/treeWriter.mjs';

const repo = join(import.meta.dirname, '..');
const addonPath = join(repo, 'native', 'build', 'velo_native.node');

interface Result {
  files: number; dirs: number; symlinks: number; linked: number; reflinked: number; copied: number;
  fallbacks: number; bytes: number; tampered: number[];
}
interface Addon {
  materialize(tree: Uint8Array, objectsDir: string, destDir: string, method: string, threads?: number): Promise<Result>;
}
interface Entry {
  path: string; kind: 'dir' | 'file' | 'symlink'; exec?: boolean; private?: boolean; size?: number; digest?: string;
  target?: string; mtimeNs?: bigint; data?: Buffer;
}

let addon: Addon;
let base: string;
let objects: string;
let entries: Entry[];
let tree: Buffer;
let plainTree: Buffer;
let n = 0;

function freshDir(): string {
  const d = join(base, `dest-${n++}`);
  mkdirSync(d);
  return d;
}

/** tree index of every entry, in the order writeTree lays them out */
function indexOfPaths(buf: Buffer): string[] {
  const count = buf.readUInt32LE(16);
  const strAt = 32 + 64 * count;
  const paths: string[] = [];
  for (let i = 0; i < count; i++) {
    const off = 32 + 64 * i;
    const parent = buf.readUInt32LE(off + 4);
    const name = buf.toString('utf8', strAt + buf.readUInt32LE(off + 8), strAt + buf.readUInt32LE(off + 8) + buf.readUInt32LE(off + 12));
    paths.push(i === 0 ? '' : parent === 0 ? name : `${paths[parent]}/${name}`);
  }
  return paths;
}

beforeAll(() => {
  if (!existsSync(addonPath)) {
    const r = spawnSync(process.execPath, [join(repo, 'native', 'build.mjs')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`native build failed: ${r.stderr}`);
  }
  addon = createRequire(import.meta.url)(addonPath) as Addon;
  base = mkdtempSync(join(tmpdir(), 'velo-native-mat-'));
  objects = join(base, 'objects');
  mkdirSync(objects);
  entries = nodeModulesEntries({ packages: 40, mtimes: true }) as Entry[];
  writeObjects(objects, entries);
  tree = writeTree(entries, { mtimes: true });
  plainTree = writeTree(entries, { mtimes: false });
});

afterAll(() => {
  if (base) rmSync(base, { recursive: true, force: true });
});

const files = () => entries.filter((e) => e.kind === 'file');
const dirs = () => entries.filter((e) => e.kind === 'dir');
const links = () => entries.filter((e) => e.kind === 'symlink');

describe('the test tree writer', () => {
  it('writes the same bytes as src/store/treeFormat.ts serializeTree', () => {
    const [root, ...rest] = entries;
    const input = rest.map(({ data: _data, ...e }) => e);
    expect(serializeTree(input, { mtimes: true, root: root! }).equals(tree)).toBe(true);
    expect(serializeTree(input, { mtimes: false }).equals(plainTree)).toBe(true);
  });
});

describe('materialize by hardlink', () => {
  it('links every file to its object and recreates dirs, symlinks and mtimes', async () => {
    const dest = freshDir();
    const r = await addon.materialize(tree, objects, dest, 'hardlink', 4);
    expect(r).toMatchObject({
      files: files().length, dirs: dirs().length - 1, symlinks: links().length,
      linked: files().length, reflinked: 0, copied: 0, fallbacks: 0, tampered: [],
    });
    expect(r.bytes).toBe(files().reduce((s, e) => s + e.size!, 0));
    for (const e of entries) {
      const p = join(dest, e.path);
      const st = lstatSync(p, { bigint: true });
      if (e.kind === 'file') {
        const obj = statSync(objectPath(objects, e), { bigint: true });
        expect(st.ino).toBe(obj.ino);
        expect(Number(st.mode & 0o777n)).toBe(e.exec ? 0o555 : 0o444);
        expect(st.mtimeMs).toBe(BigInt(OBJECT_MTIME_S * 1000));
      } else if (e.kind === 'dir') {
        expect(st.isDirectory()).toBe(true);
        expect(Number(st.mode & 0o777n)).toBe(0o755);
        expect(st.mtimeNs).toBe(e.mtimeNs);
      } else {
        expect(st.isSymbolicLink()).toBe(true);
        expect(readlinkSync(p)).toBe(e.target);
        expect(st.mtimeNs).toBe(e.mtimeNs);
      }
    }
    expect(readdirSync(join(dest, 'node_modules')).length).toBe(entries.filter((e) => /^node_modules\/[^/]+$/.test(e.path)).length);
  });

  it('copies the files marked private instead of linking them', async () => {
    const local = entries.map((e) => ({ ...e, private: e.kind === 'file' && e.path.includes('/pkg-7/') }));
    const privateFiles = local.filter((e) => e.private);
    const dest = freshDir();
    const r = await addon.materialize(writeTree(local, { mtimes: true }), objects, dest, 'hardlink', 2);
    expect(r).toMatchObject({ copied: privateFiles.length, linked: files().length - privateFiles.length, fallbacks: 0 });
    for (const e of privateFiles) {
      const st = lstatSync(join(dest, e.path), { bigint: true });
      expect(st.ino).not.toBe(statSync(objectPath(objects, e), { bigint: true }).ino);
      expect(Number(st.mode & 0o777n)).toBe(e.exec ? 0o755 : 0o644);
      expect(readFileSync(join(dest, e.path)).equals(e.data!)).toBe(true);
    }
    const [root, ...rest] = local;
    expect(serializeTree(rest.map(({ data: _d, ...e }) => e), { mtimes: true, root: root! }).equals(writeTree(local, { mtimes: true }))).toBe(true);
  });

  it('gives the same result with one thread and with many', async () => {
    const one = await addon.materialize(tree, objects, freshDir(), 'hardlink', 1);
    const many = await addon.materialize(tree, objects, freshDir(), 'hardlink', 16);
    expect(many).toEqual(one);
  });
});

describe('spreading directories over block groups (ext4, FS_TOPDIR_FL)', () => {
  // node_modules' children at the root, as velo lays out a project's node_modules
  const rootedAtPackages = () => entries
    .filter((e) => e.path !== 'node_modules')
    .map((e) => (e.path === '' ? e : { ...e, path: e.path.replace(/^node_modules\//, '') }));
  const inodeGroupsOfTopDirs = (dest: string) => new Set(readdirSync(dest, { withFileTypes: true })
    .filter((d) => d.isDirectory()).map((d) => Math.floor(lstatSync(join(dest, d.name)).ino / 8192)));
  const withSpread = async <T>(value: string, run: () => Promise<T>): Promise<T> => {
    process.env.VELO_DIR_SPREAD = value;
    try { return await run(); } finally { delete process.env.VELO_DIR_SPREAD; }
  };

  it('puts the top directories in different inode groups, lays out the same tree, and leaves no flag behind', async () => {
    expect(spawnSync('stat', ['-f', '-c', '%T', base], { encoding: 'utf8' }).stdout.trim()).toBe('ext2/ext3'); // the test needs ext4
    const local = rootedAtPackages();
    const spreadDest = freshDir();
    const plainDest = freshDir();
    const spread = await withSpread('1', () => addon.materialize(writeTree(local, { mtimes: true }), objects, spreadDest, 'hardlink', 2));
    const plain = await withSpread('0', () => addon.materialize(writeTree(local, { mtimes: true }), objects, plainDest, 'hardlink', 2));
    expect(spread).toEqual(plain);
    for (const e of local) {
      const a = lstatSync(join(spreadDest, e.path), { bigint: true });
      const b = lstatSync(join(plainDest, e.path), { bigint: true });
      expect([a.mode, a.size, a.mtimeNs, e.kind === 'file' ? a.ino : 0n]).toEqual([b.mode, b.size, b.mtimeNs, e.kind === 'file' ? b.ino : 0n]);
    }
    // spread: the 40 package directories land in many block groups (13-22 seen here); in place: a few
    const spreadGroups = inodeGroupsOfTopDirs(spreadDest).size;
    expect(spreadGroups).toBeGreaterThanOrEqual(8);
    expect(spreadGroups).toBeGreaterThan(inodeGroupsOfTopDirs(plainDest).size);
    // every directory velo marked (the root, and any with 8+ subdirectories) is unmarked again
    const attrs = spawnSync('sh', ['-c', 'find "$1" -type d -exec lsattr -d {} +', 'sh', spreadDest], { encoding: 'utf8' });
    expect(attrs.status, attrs.stderr).toBe(0);
    const lines = attrs.stdout.trim().split('\n');
    expect(lines.length).toBe(dirs().length - 1); // every directory was read
    expect(lines.filter((l) => /^\S*T\S* /.test(l))).toEqual([]);
  });
});

describe('materialize by copy and reflink', () => {
  it('copies bytes with 0644/0755 modes and the tree mtimes', async () => {
    const dest = freshDir();
    const r = await addon.materialize(tree, objects, dest, 'copy', 3);
    expect(r).toMatchObject({ files: files().length, copied: files().length, linked: 0, fallbacks: 0 });
    for (const e of files()) {
      const p = join(dest, e.path);
      const st = lstatSync(p, { bigint: true });
      expect(st.ino).not.toBe(statSync(objectPath(objects, e), { bigint: true }).ino);
      expect(Number(st.mode & 0o777n)).toBe(e.exec ? 0o755 : 0o644);
      expect(st.mtimeNs).toBe(e.mtimeNs);
      expect(readFileSync(p).equals(e.data!)).toBe(true);
    }
  });

  it('gives copies the store mtime when the tree has no mtimes', async () => {
    const dest = freshDir();
    await addon.materialize(plainTree, objects, dest, 'copy', 2);
    for (const e of files().slice(0, 50)) expect(statSync(join(dest, e.path)).mtimeMs).toBe(OBJECT_MTIME_S * 1000);
  });

  it('falls back to copying where the filesystem cannot reflink', async () => {
    const fsType = spawnSync('stat', ['-f', '-c', '%T', base], { encoding: 'utf8' }).stdout.trim();
    const dest = freshDir();
    const r = await addon.materialize(tree, objects, dest, 'reflink', 2);
    expect(r.files).toBe(files().length);
    expect(r.reflinked + r.copied).toBe(files().length);
    if (fsType === 'ext2/ext3' || fsType === 'tmpfs') {
      expect(r.reflinked).toBe(0);
      expect(r.fallbacks).toBe(files().length);
    }
    const e = files().find((f) => f.exec)!;
    expect(readFileSync(join(dest, e.path)).equals(e.data!)).toBe(true);
    expect(statSync(join(dest, e.path)).mode & 0o777).toBe(0o755);
  });
});

describe('the object guard', () => {
  it('skips objects whose size or mtime changed and reports their entries', async () => {
    const own = join(base, 'objects-tampered');
    mkdirSync(own);
    const local = nodeModulesEntries({ packages: 3 }) as Entry[];
    writeObjects(own, local);
    const localTree = writeTree(local);
    const paths = indexOfPaths(localTree);
    const grown = local.find((e) => e.path.endsWith('pkg-1/README.md'))!;
    const touched = local.find((e) => e.path.endsWith('pkg-2/lib/f3.js'))!;
    chmodSync(objectPath(own, grown), 0o644);
    appendFileSync(objectPath(own, grown), 'edited in place');
    utimesSync(objectPath(own, grown), OBJECT_MTIME_S, OBJECT_MTIME_S);
    utimesSync(objectPath(own, touched), OBJECT_MTIME_S + 60, OBJECT_MTIME_S + 60);
    for (const method of ['hardlink', 'copy'] as const) {
      const dest = freshDir();
      const r = await addon.materialize(localTree, own, dest, method, 2);
      const bad = r.tampered.map((i) => paths[i]).sort();
      expect(bad).toEqual([grown.path, touched.path].sort());
      expect(existsSync(join(dest, grown.path))).toBe(false);
      expect(existsSync(join(dest, touched.path))).toBe(false);
      expect(r.files).toBe(local.filter((e) => e.kind === 'file').length - 2);
    }
  });
});

describe('errors', () => {
  it('rejects with the errno name, the path and the syscall', async () => {
    const dest = freshDir();
    writeFileSync(join(dest, 'node_modules'), 'in the way');
    const err = await addon.materialize(tree, objects, dest, 'hardlink', 2).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ code: 'EEXIST', errno: -17, syscall: 'mkdir', path: join(dest, 'node_modules') });
    expect((err as Error).message).toContain(join(dest, 'node_modules'));
  });

  it('reports missing objects like damaged ones', async () => {
    const empty = join(base, 'objects-empty');
    mkdirSync(empty);
    const paths = indexOfPaths(tree);
    for (const method of ['hardlink', 'copy'] as const) {
      const dest = freshDir();
      const r = await addon.materialize(tree, empty, dest, method, 2);
      expect(r.files).toBe(0);
      expect(r.tampered.map((i) => paths[i]).sort()).toEqual(files().map((e) => e.path).sort());
      expect(r.symlinks).toBe(links().length);
    }
  });

  it('rejects a destination that does not exist', async () => {
    const err = await addon.materialize(tree, objects, join(base, 'nope'), 'hardlink', 1).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ENOENT', path: join(base, 'nope') });
  });

  it('validates its arguments', () => {
    expect(() => addon.materialize(tree, objects, base, 'symlink')).toThrow(/method/);
    expect(() => addon.materialize('tree' as unknown as Buffer, objects, base, 'copy')).toThrow(TypeError);
  });
});

describe('corrupt trees', () => {
  const small = (): Buffer =>
    writeTree([
      { path: '', kind: 'dir' },
      { path: 'a', kind: 'dir' },
      { path: 'a/b', kind: 'symlink', target: '../c' },
      { path: 'c', kind: 'symlink', target: 'a' },
    ]);

  async function outcome(buf: Buffer): Promise<string> {
    try {
      await addon.materialize(buf, objects, freshDir(), 'copy', 2);
      return 'ok';
    } catch (e) {
      return (e as { code: string }).code;
    }
  }

  it('rejects bad headers, lengths and indices with CORRUPT_TREE', async () => {
    const good = small();
    expect(await outcome(good)).toBe('ok');
    expect(await outcome(good.subarray(0, 20))).toBe('CORRUPT_TREE');
    expect(await outcome(good.subarray(0, good.length - 1))).toBe('CORRUPT_TREE');
    const magic = Buffer.from(good); magic.write('VELOTRE!', 0, 'latin1');
    expect(await outcome(magic)).toBe('CORRUPT_TREE');
    const version = Buffer.from(good); version.writeUInt16LE(2, 8);
    expect(await outcome(version)).toBe('CORRUPT_TREE');
    const children = Buffer.from(good); children.writeUInt32LE(1000, 32 + 36);
    expect(await outcome(children)).toBe('CORRUPT_TREE');
    const name = Buffer.from(good); name.writeUInt32LE(0xffffff00, 32 + 64 + 8);
    expect(await outcome(name)).toBe('CORRUPT_TREE');
    const cycle = Buffer.from(good); cycle.writeUInt32LE(3, 32 + 64 + 4);
    expect(await outcome(cycle)).toBe('CORRUPT_TREE');
    const dotdot = writeTree([{ path: '', kind: 'dir' }, { path: 'x', kind: 'dir' }]);
    dotdot.write('..', dotdot.length - 1, 'latin1');
    expect(await outcome(Buffer.concat([dotdot.subarray(0, 20), Buffer.from([2, 0, 0, 0]), dotdot.subarray(24), Buffer.from('.')]))).toBe('CORRUPT_TREE');
  });

  it('never crashes on random damage', async () => {
    const good = small();
    let seed = 12345;
    const rand = (k: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % k);
    const seen = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const bad = Buffer.from(good);
      for (let j = 0; j <= rand(3); j++) bad[rand(bad.length)] = rand(256);
      seen.add(await outcome(bad));
    }
    expect(seen.has('CORRUPT_TREE')).toBe(true);
    for (const code of seen) expect(code).toMatch(/^(ok|CORRUPT_TREE|E[A-Z]+)$/);
  }, 30_000);
});
