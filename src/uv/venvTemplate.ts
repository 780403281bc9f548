/**
 * The venv itself as uv creates it for a project (pyvenv.cfg, the python
 * links, activate scripts, .gitignore, CACHEDIR.TAG, …), recorded once from
 * a scratch environment uv made, and given to the next environment of the
 * same interpreter, uv and project name without running uv: the scratch
 * location in every file and link target is replaced by the new one (the
 * same substitution a scratch environment's own files get).
 *
 * Key: the interpreter's record key (its binary), the uv binary (its
 * templates and the `uv = ` line of pyvenv.cfg) and the project name (the
 * prompt).
 */
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { getKey, setKey } from '../store/keys.js';
import type { Store } from '../store/store.js';
import type { TreeEntry } from '../store/treeFormat.js';
import { putTree, readTree } from '../store/trees.js';
import { writeBufferToStore } from '../store/writeBufferToStore.js';
import type { PerEnvFile } from './assembleEnvironment.js';
import { stampOf } from './envState.js';

const LAYOUT = 'velo-uv-venv-1';

export function venvTemplateKey(interpreterKey: string, uvPath: string, projectName: string): string {
  const uv = stampOf(uvPath);
  const ident = JSON.stringify({ layout: LAYOUT, interpreterKey, uv, projectName });
  return `uv-venv:${createHash('sha256').update(ident).digest('hex').slice(0, 40)}`;
}

/** Everything in a scratch environment that no distribution claims: the venv itself, as uv wrote it. */
export function readVenvSkeleton(scratchDir: string, claimed: Set<string>): PerEnvFile[] {
  const out: PerEnvFile[] = [];
  const walk = (relDir: string): void => {
    const abs = relDir === '' ? scratchDir : join(scratchDir, relDir);
    for (const d of readdirSync(abs, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const rel = relDir === '' ? d.name : `${relDir}/${d.name}`;
      if (claimed.has(rel) || d.name === '__pycache__') continue;
      const childAbs = join(abs, d.name);
      const st = lstatSync(childAbs);
      if (d.isDirectory()) {
        out.push({ rel, kind: 'dir', mode: st.mode & 0o777 });
        walk(rel);
      } else if (d.isSymbolicLink()) {
        out.push({ rel, kind: 'symlink', target: readlinkSync(childAbs), mode: 0o777 });
      } else if (d.isFile()) {
        out.push({ rel, kind: 'file', data: readFileSync(childAbs), mode: st.mode & 0o777 });
      }
    }
  };
  walk('');
  return out;
}

/**
 * The skeleton of a bare venv out of a scratch environment that also held
 * distributions: their directories go (a directory stays when something of
 * the venv's own is under it), site-packages, its parents and bin/ stay.
 */
export function bareSkeleton(files: PerEnvFile[], sitePackages: string): PerEnvFile[] {
  const keep = new Set<string>(['bin']);
  const parts = sitePackages.split('/');
  for (let i = 1; i <= parts.length; i++) keep.add(parts.slice(0, i).join('/'));
  for (const f of files) {
    if (f.kind === 'dir') continue;
    const parts = f.rel.split('/');
    for (let i = 1; i < parts.length; i++) keep.add(parts.slice(0, i).join('/'));
  }
  return files.filter((f) => f.kind !== 'dir' || keep.has(f.rel));
}

function replaceAll(data: Buffer, from: Buffer, to: Buffer): Buffer {
  let at = data.indexOf(from);
  if (at < 0) return data;
  const parts: Buffer[] = [];
  let start = 0;
  while (at >= 0) {
    parts.push(data.subarray(start, at), to);
    start = at + from.length;
    at = data.indexOf(from, start);
  }
  parts.push(data.subarray(start));
  return Buffer.concat(parts);
}

/** The skeleton with every mention of `from` (where uv made it) replaced by `to` (where it goes). */
export function relocateSkeleton(files: PerEnvFile[], from: string, to: string): PerEnvFile[] {
  const f = Buffer.from(from);
  const t = Buffer.from(to);
  return files.map((x) => {
    if (x.kind === 'file' && x.data!.includes(f)) return { ...x, data: replaceAll(x.data!, f, t), remake: { venv: true } };
    if (x.kind === 'symlink' && x.target!.includes(from)) return { ...x, target: x.target!.split(from).join(to), remake: { venv: true } };
    return x;
  });
}

/** Record a scratch environment's skeleton under `key` (velo/venv.json says where uv made it). */
export function saveVenvTemplate(store: Store, key: string, scratchDir: string, files: PerEnvFile[]): void {
  const entries: TreeEntry[] = [];
  try {
    for (const f of files) {
      const path = `venv/${f.rel}`;
      if (f.kind === 'dir') entries.push({ path, kind: 'dir' });
      else if (f.kind === 'symlink') entries.push({ path, kind: 'symlink', target: f.target! });
      else {
        const exec = (f.mode & 0o111) !== 0;
        const added = writeBufferToStore(store, f.data!, exec);
        entries.push({ path, kind: 'file', exec, size: added.size, digest: added.digest });
      }
    }
    const meta = writeBufferToStore(store, Buffer.from(JSON.stringify({ layout: LAYOUT, from: scratchDir })), false);
    entries.push({ path: 'velo/venv.json', kind: 'file', exec: false, size: meta.size, digest: meta.digest });
  } finally {
    store.flushCounters();
  }
  setKey(store, key, putTree(store, entries), { kind: 'uv-venv' });
}

/** The recorded skeleton, relocated to `envDir`; undefined when there is none (or it is damaged). */
export function loadVenvTemplate(store: Store, key: string, envDir: string): PerEnvFile[] | undefined {
  const tree = getKey(store, key);
  if (!tree) return undefined;
  try {
    const parsed = readTree(store, tree);
    const read = (digest: string, exec: boolean, size: number): Buffer => {
      const data = readFileSync(store.objectPath(digest, exec));
      if (data.length !== size) throw new Error(`object ${digest} has the wrong size`);
      return data;
    };
    let from: string | undefined;
    const files: PerEnvFile[] = [];
    for (const e of parsed.entries) {
      if (e.path === 'velo/venv.json' && e.kind === 'file') {
        const meta = JSON.parse(read(e.digest, e.exec, e.size).toString('utf8')) as { layout: string; from: string };
        if (meta.layout !== LAYOUT) return undefined;
        from = meta.from;
        continue;
      }
      if (!e.path.startsWith('venv/')) continue;
      const rel = e.path.slice(5);
      if (e.kind === 'dir') files.push({ rel, kind: 'dir', mode: 0o755 });
      else if (e.kind === 'symlink') files.push({ rel, kind: 'symlink', target: e.target, mode: 0o777 });
      else files.push({ rel, kind: 'file', data: read(e.digest, e.exec, e.size), mode: e.exec ? 0o755 : 0o644 });
    }
    return from === undefined ? undefined : relocateSkeleton(files, from, envDir);
  } catch {
    return undefined;
  }
}
