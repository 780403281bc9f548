/**
 * Store what uv installed into a scratch environment: each fetched
 * distribution (already read and checked through its RECORD) is stored as a
 * tree under its package key, and uv's unpacked copy in its cache becomes
 * hardlinks to the stored objects (one copy on disk, uvCacheLinks.ts).
 * When everything is compiled (`compile`: --compile-bytecode,
 * UV_COMPILE_BYTECODE, a mount), the `.py` files are compiled once: the
 * fetched distributions' into their bytecode keys (distBytecode.ts), the
 * local distributions' (the project's own, path and git dependencies) for
 * this environment only. Otherwise nothing is compiled: python writes
 * bytecode as modules get imported, and velo harvests it.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { addFile } from '../store/addFile.js';
import type { Store } from '../store/store.js';
import type { TreeEntry } from '../store/treeFormat.js';
import type { BuildPhase } from './buildWithUv.js';
import { addBytecode } from './distBytecode.js';
import { compileBytecode, inTestSuite, pycPathFor, type CompileJob } from './compileBytecode.js';
import type { InstalledDistribution } from './installedDistribution.js';
import type { Interpreter } from './interpreter.js';
import { loadDistribution, storeDistribution, type StoredDistribution } from './storedDistribution.js';
import { linkUvCacheToStore, type CacheLinkResult, type UvScratchRun } from './uvCacheLinks.js';

export interface IngestInput extends UvScratchRun {
  scratchPython: string;
  interp: Interpreter;
  /** velo's scratch directory (compiled bytecode is written under it) */
  work: string;
  threads: number;
  /** compile every module now (else none) */
  compile: boolean;
  fetched: { key: string; dist: InstalledDistribution }[];
  local: InstalledDistribution[];
  phase: (name: BuildPhase, message: string) => void;
  endPhase: (name: BuildPhase) => void;
}

export interface Ingested {
  /** the fetched distributions, by key, as stored */
  stored: Map<string, StoredDistribution>;
  /** .pyc files compiled for the local distributions: rel → file */
  localPycs: Map<string, string>;
  compiled: number;
  newObjects: number;
  newBytes: number;
  cacheLinked: CacheLinkResult;
}

export async function ingestScratch(c: IngestInput): Promise<Ingested> {
  const { interp, store } = c;
  const pycDir = join(c.work, 'pyc');
  const jobs: CompileJob[] = [];
  const pycOwner = new Map<string, { dist: InstalledDistribution; rel: string }>();
  const spPrefix = `${interp.sitePackages}/`;
  for (const d of c.compile ? [...c.fetched.map((f) => f.dist), ...c.local] : []) {
    for (const f of d.files) {
      if (f.role !== 'shared' || !f.rel.endsWith('.py') || !f.rel.startsWith(spPrefix)) continue;
      if (inTestSuite(f.rel.slice(spPrefix.length))) continue;
      const pycRel = pycPathFor(f.rel, interp.cacheTag);
      const output = join(pycDir, pycRel);
      jobs.push({ source: f.abs, output, displayName: f.rel.slice(spPrefix.length) });
      pycOwner.set(output, { dist: d, rel: pycRel });
    }
  }
  if (jobs.length > 0) c.phase('compile', `compiling ${jobs.length} file(s) to bytecode`);
  const compiled = await compileBytecode(c.scratchPython, jobs, c.env, c.cwd, c.threads);
  const pycsByDist = new Map<InstalledDistribution, Map<string, string>>();
  for (const output of compiled) {
    const owner = pycOwner.get(output)!;
    let m = pycsByDist.get(owner.dist);
    if (!m) pycsByDist.set(owner.dist, (m = new Map()));
    m.set(owner.rel, output);
  }
  if (jobs.length > 0) c.endPhase('compile');

  const out: Ingested = { stored: new Map(), localPycs: new Map(), compiled: compiled.size, newObjects: 0, newBytes: 0, cacheLinked: { files: 0, bytes: 0 } };
  if (c.fetched.length > 0) c.phase('ingest', `storing ${c.fetched.length} distribution(s)`);
  for (const { key, dist } of c.fetched) {
    const r = await storeDistribution(store, key, dist, interp.sitePackages);
    await storeBytecode(store, key, dist, pycsByDist.get(dist));
    out.stored.set(key, loadDistribution(store, r.tree));
    out.newObjects += r.newObjects;
    out.newBytes += r.newBytes;
  }
  // one copy: uv's unpacked files become hardlinks to the objects velo just stored
  out.cacheLinked = await linkUvCacheToStore({
    store,
    uv: c.uv,
    args: c.args,
    env: c.env,
    cwd: c.cwd,
    scratch: c.scratch,
    sitePackages: interp.sitePackages,
    dists: c.fetched.map(({ key, dist }) => ({ installed: dist, stored: out.stored.get(key)! })),
  });
  if (c.fetched.length > 0) c.endPhase('ingest');
  for (const d of c.local) for (const [rel, abs] of pycsByDist.get(d) ?? []) out.localPycs.set(rel, abs);
  return out;
}

/** The bytecode compiled for a fetched distribution, into its bytecode key (where the wheel shipped no pyc of its own). */
async function storeBytecode(store: Store, key: string, dist: InstalledDistribution, pycs: Map<string, string> | undefined): Promise<void> {
  if (!pycs || pycs.size === 0) return;
  const shipped = new Set(dist.files.map((f) => f.rel));
  const entries: TreeEntry[] = [];
  try {
    for (const [rel, abs] of pycs) {
      if (shipped.has(rel)) continue;
      const added = await addFile(store, abs, false, statSync(abs).size);
      entries.push({ path: rel, kind: 'file', exec: false, size: added.size, digest: added.digest });
    }
  } finally {
    store.flushCounters();
  }
  addBytecode(store, key, entries);
}
