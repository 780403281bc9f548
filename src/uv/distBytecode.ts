/**
 * A distribution's bytecode, kept beside it in the store and grown as
 * modules get imported: one tree per (distribution, interpreter) under
 * `uv-pyc:<name>==<version>@<digest>` (the package key already names the
 * interpreter), holding `<dir>/__pycache__/<stem>.<cache tag>.pyc` files,
 * each compiled by velo from the stored source as CHECKED_HASH
 * (compileBytecode.ts). loadDistribution adds them to the distribution's
 * shared files, so every environment linked afterwards has them.
 *
 * Two ways in:
 *  - compile everything (`--compile-bytecode`, UV_COMPILE_BYTECODE=1, and
 *    mount projections): every source not yet compiled (test suites aside);
 *  - harvest (the default, as uv compiles nothing at sync): python writes
 *    timestamp pycs into an environment's __pycache__ as modules are
 *    imported. At the next sync or pip command, velo looks (readdir and
 *    lstat only, bounded to the distributions of that command) in the
 *    __pycache__ of the link-projected environments of the same interpreter
 *    it has recorded, for pycs of store files the store lacks; it compiles
 *    exactly those modules itself (python's files are never stored), and
 *    hardlinks the stored pyc over each python-written one (link to a
 *    temporary name, then rename: the old file works until the swap), so
 *    each environment's own copy goes away.
 */
import { createHash } from 'node:crypto';
import { existsSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { VeloError } from '../errors.js';
import { addFile } from '../store/addFile.js';
import { getKey, getKeys, listProjects, projectKeys, setKey, unregisterProject } from '../store/keys.js';
import type { Store } from '../store/store.js';
import type { TreeEntry } from '../store/treeFormat.js';
import { putTree, readTree } from '../store/trees.js';
import { writeBufferToStore } from '../store/writeBufferToStore.js';
import { BYTECODE_KIND, bytecodeKey, loadBytecode } from './bytecodeKey.js';
import { compileBytecode, inTestSuite, pycPathFor, type CompileJob } from './compileBytecode.js';
import type { Interpreter } from './interpreter.js';
import { loadDistribution, type StoredDistribution } from './storedDistribution.js';

/** Names the bytecode the store holds for these distributions now (it changes when bytecode is added). */
export function bytecodeSignature(store: Store, distKeys: string[]): string {
  const keys = distKeys.filter((k) => k.startsWith('uv:')).map(bytecodeKey).sort();
  const found = getKeys(store, keys);
  return createHash('sha256')
    .update(keys.map((k) => `${k}=${found.get(k) ?? ''}`).join('\n'))
    .digest('hex')
    .slice(0, 24);
}

/** Add compiled files to a distribution's bytecode tree (a new tree: the union). */
export function addBytecode(store: Store, distKey: string, added: TreeEntry[]): void {
  if (added.length === 0) return;
  const byPath = new Map(loadBytecode(store, distKey).map((e) => [e.path, e]));
  for (const e of added) byPath.set(e.path, e);
  const entries = [...byPath.values()];
  const tree = putTree(store, entries);
  setKey(store, bytecodeKey(distKey), tree, { kind: BYTECODE_KIND, logicalBytes: entries.reduce((n, e) => n + (e.size ?? 0), 0), files: entries.length });
}

export interface BytecodeContext {
  store: Store;
  interp: Interpreter;
  /** the interpreter that compiles (the base python: -I, no site) */
  python: string;
  env: NodeJS.ProcessEnv;
  cwd: string;
  threads: number;
}

interface Source {
  /** the .py, from the environment root */
  rel: string;
  digest: string;
  exec: boolean;
}

/** The .py files of a distribution under site-packages, and which of them lack bytecode. */
function sourcesOf(d: StoredDistribution, interp: Interpreter): { lacking: Source[] } {
  const have = new Set(d.shared.map((e) => e.path));
  const sp = `${interp.sitePackages}/`;
  const lacking: Source[] = [];
  for (const e of d.shared) {
    if (e.kind !== 'file' || !e.path.endsWith('.py') || !e.path.startsWith(sp)) continue;
    if (!have.has(pycPathFor(e.path, interp.cacheTag))) lacking.push({ rel: e.path, digest: e.digest!, exec: e.exec ?? false });
  }
  return { lacking };
}

/** Compile these sources of a distribution from their store objects and add them to its bytecode. */
async function compileInto(c: BytecodeContext, distKey: string, sources: Source[]): Promise<Map<string, TreeEntry>> {
  const out = new Map<string, TreeEntry>();
  if (sources.length === 0) return out;
  const work = c.store.tmpPath('uv-pyc');
  mkdirSync(work, { recursive: true });
  try {
    const sp = `${c.interp.sitePackages}/`;
    const jobs: CompileJob[] = sources.map((s, i) => ({
      source: c.store.objectPath(s.digest, s.exec),
      output: join(work, `${i}.pyc`),
      displayName: s.rel.slice(sp.length),
    }));
    const done = await compileBytecode(c.python, jobs, c.env, c.cwd, c.threads);
    const entries: TreeEntry[] = [];
    try {
      for (let i = 0; i < jobs.length; i++) {
        const output = jobs[i]!.output;
        if (!done.has(output)) continue;
        const added = await addFile(c.store, output, false, statSync(output).size);
        const e: TreeEntry = { path: pycPathFor(sources[i]!.rel, c.interp.cacheTag), kind: 'file', exec: false, size: added.size, digest: added.digest };
        entries.push(e);
        out.set(e.path, e);
      }
    } finally {
      c.store.flushCounters();
    }
    addBytecode(c.store, distKey, entries);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return out;
}

/** The distributions of these keys (key → tree, as the store holds them); a damaged one is left out. */
function loadAll(store: Store, found: Map<string, string>): Map<string, StoredDistribution> {
  const out = new Map<string, StoredDistribution>();
  for (const [key, tree] of found) {
    try {
      out.set(key, loadDistribution(store, tree));
    } catch (err) {
      if (!(err instanceof VeloError)) throw err; // a damaged entry: the sync deals with it
    }
  }
  return out;
}

const LACKING_LAYOUT = 'velo-uv-pyc-lacking-1';

/**
 * The sources of these distributions without stored bytecode, by
 * distribution. Working it out reads every distribution's tree; the answer
 * is remembered under a key named by the distributions and the bytecode
 * they have now (`uv-pyclacking:`, a cache gc may drop), so a sync with
 * nothing new to compile reads one small object.
 */
function lackingSources(c: BytecodeContext, distKeys: string[]): Map<string, Source[]> {
  // the keys the store has: one it lacks now (a distribution a lazy mount still fetches from the remote) may be set later
  const present = getKeys(c.store, distKeys.filter((k) => k.startsWith('uv:')));
  const keys = [...present.keys()].sort();
  const name = `uv-pyclacking:${createHash('sha256')
    .update(JSON.stringify({ layout: LACKING_LAYOUT, keys, bytecode: bytecodeSignature(c.store, keys), tag: c.interp.cacheTag, sp: c.interp.sitePackages }))
    .digest('hex')
    .slice(0, 40)}`;
  const tree = getKey(c.store, name);
  if (tree) {
    try {
      const entry = readTree(c.store, tree).entries.find((e) => e.path === 'lacking.json');
      if (entry?.kind === 'file') {
        const rows = JSON.parse(readFileSync(c.store.objectPath(entry.digest!, false), 'utf8')) as [string, [string, string, boolean][]][];
        return new Map(rows.map(([k, srcs]) => [k, srcs.map(([rel, digest, exec]) => ({ rel, digest, exec }))]));
      }
    } catch {
      /* unreadable: worked out again below */
    }
  }
  const out = new Map<string, Source[]>();
  for (const [key, d] of loadAll(c.store, present)) {
    const lacking = sourcesOf(d, c.interp).lacking;
    if (lacking.length > 0) out.set(key, lacking);
  }
  const rows = [...out].map(([k, srcs]) => [k, srcs.map((x) => [x.rel, x.digest, x.exec])]);
  const added = writeBufferToStore(c.store, Buffer.from(JSON.stringify(rows)), false);
  c.store.flushCounters();
  setKey(c.store, name, putTree(c.store, [{ path: 'lacking.json', kind: 'file', exec: false, size: added.size, digest: added.digest }]), { kind: 'uv-pyclacking' });
  return out;
}

/** Compile every module of these distributions that has no stored bytecode yet (their test suites aside); returns how many. */
async function compileMissing(c: BytecodeContext, distKeys: string[]): Promise<number> {
  let n = 0;
  const sp = `${c.interp.sitePackages}/`;
  for (const [key, lacking] of lackingSources(c, distKeys)) {
    const wanted = lacking.filter((s) => !inTestSuite(s.rel.slice(sp.length)));
    n += (await compileInto(c, key, wanted)).size;
  }
  return n;
}

/** The link-projected environments of this interpreter velo has recorded (ones that are gone are forgotten). */
function recordedEnvironments(store: Store, interpreterKey: string): string[] {
  const out: string[] = [];
  for (const p of listProjects(store)) {
    if ((p.ecosystem !== 'uv' && p.ecosystem !== 'uv-pip') || p.projection !== 'link') continue;
    if (!projectKeys(store, p.path, p.ecosystem).includes(interpreterKey)) continue;
    if (!existsSync(join(p.path, 'pyvenv.cfg'))) {
      unregisterProject(store, p.path, p.ecosystem);
      continue;
    }
    out.push(p.path);
  }
  return out;
}

interface HarvestResult {
  /** modules compiled into the store */
  compiled: number;
  /** python-written pycs replaced by the stored ones */
  linked: number;
  environments: number;
}

/**
 * Harvest what python compiled in the recorded environments, for these
 * distributions: compile those modules into the store and link them in
 * place of python's own files.
 */
async function harvestBytecode(c: BytecodeContext, interpreterKey: string, distKeys: string[]): Promise<HarvestResult> {
  const r: HarvestResult = { compiled: 0, linked: 0, environments: 0 };
  const envs = recordedEnvironments(c.store, interpreterKey);
  r.environments = envs.length;
  if (envs.length === 0) return r;
  const suffix = `.${c.interp.cacheTag}.pyc`;
  for (const [key, lacking] of lackingSources(c, distKeys)) {
    // directory → stem → source, for the sources without stored bytecode
    const byDir = new Map<string, Map<string, Source>>();
    for (const s of lacking) {
      const dir = posix.dirname(s.rel);
      let m = byDir.get(dir);
      if (!m) byDir.set(dir, (m = new Map()));
      m.set(posix.basename(s.rel, '.py'), s);
    }
    if (byDir.size === 0) continue;
    const wanted = new Map<string, Source>();
    /** pyc path (from the environment root) → files python wrote there, one per environment */
    const written: { pycRel: string; file: string; real: string }[] = [];
    for (const env of envs) {
      let realEnv: string;
      try {
        realEnv = realpathSync(env);
      } catch {
        continue;
      }
      for (const [dir, stems] of byDir) {
        const cache = join(env, dir, '__pycache__');
        let names: string[];
        try {
          names = readdirSync(cache);
        } catch {
          continue;
        }
        for (const name of names) {
          if (!name.endsWith(suffix)) continue;
          const s = stems.get(name.slice(0, -suffix.length));
          if (!s) continue;
          const file = join(cache, name);
          const st = lstatSync(file, { throwIfNoEntry: false });
          if (!st?.isFile() || st.nlink !== 1) continue; // only python's own files (a linked one is the store's)
          wanted.set(s.rel, s);
          written.push({ pycRel: pycPathFor(s.rel, c.interp.cacheTag), file, real: join(realEnv, dir, '__pycache__') });
        }
      }
    }
    if (wanted.size === 0) continue;
    const stored = await compileInto(c, key, [...wanted.values()]);
    r.compiled += stored.size;
    for (const w of written) {
      const e = stored.get(w.pycRel);
      if (e && replaceWithStored(c.store, w.file, w.real, e)) r.linked++;
    }
  }
  return r;
}

/** What one bytecode step put in the store (reported by --json). */
export interface BytecodeUpdate {
  /** modules compiled whole (--compile-bytecode, UV_COMPILE_BYTECODE, a mount) */
  compiled: number;
  /** modules harvested: compiled because python was seen importing them */
  harvested: number;
  /** python-written files replaced by the stored ones */
  replaced: number;
}

/**
 * Bring the stored bytecode of these distributions up to date before they
 * are laid out: every module compiled (`compileAll`), or what python
 * compiled in the recorded environments harvested.
 */
export async function updateBytecode(c: BytecodeContext, compileAll: boolean, interpreterKey: string, distKeys: string[]): Promise<BytecodeUpdate> {
  if (compileAll) return { compiled: await compileMissing(c, distKeys), harvested: 0, replaced: 0 };
  const h = await harvestBytecode(c, interpreterKey, distKeys);
  return { compiled: 0, harvested: h.compiled, replaced: h.linked };
}

/** Put the stored pyc where python wrote its own: a hardlink under a temporary name, renamed over it. */
function replaceWithStored(store: Store, file: string, real: string, e: TreeEntry): boolean {
  const dir = posix.dirname(file);
  const tmp = join(dir, `.velo-pyc-${process.pid}-${posix.basename(file)}`);
  try {
    if (realpathSync(dir) !== real) return false; // never through a symlink out of the environment
    linkSync(store.objectPath(e.digest!, false), tmp);
    renameSync(tmp, file);
    return true;
  } catch {
    rmSync(tmp, { force: true });
    return false; // another filesystem, a read-only venv: python's file stays, and works
  }
}
