/**
 * Figures about projects for `velo dashboard` (and anything else that wants
 * them), from the index and from trees — never from a walk of objects/.
 *
 * - groupProjects: the index has one row per materialized directory (an npm
 *   project's node_modules and each workspace's, a uv .venv, a cargo
 *   workspace root, a `velo init` marker); a user thinks in project
 *   directories. Rows are grouped under the project root they belong to.
 * - sharing stats: per project, the bytes of the objects only it uses
 *   (what deleting it would free) and of those it shares with others; and
 *   store-wide, what the live projects and their keys reference, which gives
 *   what gc would reclaim without walking objects/. This reads every
 *   project's trees (a walk of trees, not of objects), so it is cached in
 *   $VELO_HOME/state/project-stats.json under a fingerprint of the project
 *   rows, and recomputed (by the dashboard: in the background, after its
 *   first paint) only when a project was installed, removed or moved on.
 * - most shared packages, keys by kind: index queries.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { readCounters, type CounterName } from './counters.js';
import { listProjects, type ProjectRecord } from './keys.js';
import { readTreeBuffer } from './trees.js';
import { ENTRY_SIZE, HEADER_SIZE } from './treeFormat.js';
import type { Store } from './store.js';

/** The ecosystem value of the row `velo init` registers for a project directory. */
export const INIT_ECOSYSTEM = 'init';

export interface ProjectGroup {
  /** the project directory */
  root: string;
  /** ecosystems with a materialized tree here ('npm', 'uv', 'cargo', 'tree'), sorted */
  ecosystems: string[];
  /** `velo init` was run here */
  initialized: boolean;
  rows: ProjectRecord[];
  /** packages of the project (npm workspaces share one count; ecosystems add up) */
  packages: number;
  logicalBytes: number;
  files: number;
  /** 'mount' when any tree is mounted, else 'link' */
  projection: string;
  /** link methods the rows were materialized with */
  methods: string[];
  /** ms since the epoch: the newest row */
  lastUsed: number;
  /** the directory still exists (gc unregisters rows whose directories are gone) */
  exists: boolean;
}

/** The project directory a row belongs to before grouping. */
export function rowRoot(row: ProjectRecord): string {
  const base = row.path.split(sep).pop();
  if (row.ecosystem === 'npm' && base === 'node_modules') return dirname(row.path);
  if (row.ecosystem === 'uv' && base === '.venv') return dirname(row.path);
  return row.path;
}

/**
 * Group rows by project directory. A row goes to the deepest `velo init`
 * directory that contains it; npm rows that one install wrote together
 * (a workspace's node_modules: same package count, registered within a few
 * seconds of the root's) go to that install's root; the rest stand alone.
 */
export function groupProjects(rows: ProjectRecord[], exists: (path: string) => boolean = existsSync): ProjectGroup[] {
  const initRoots = new Set(rows.filter((r) => r.ecosystem === INIT_ECOSYSTEM).map((r) => r.path));
  const npmByRoot = new Map<string, ProjectRecord[]>();
  for (const r of rows) if (r.ecosystem === 'npm') npmByRoot.set(rowRoot(r), [...(npmByRoot.get(rowRoot(r)) ?? []), r]);
  // ancestors from the directory itself up to /, nearest first: a walk of a few names, not of every row
  const ancestors = (dir: string): string[] => {
    const out: string[] = [];
    for (let d = dir; ; d = dirname(d)) {
      out.push(d);
      if (dirname(d) === d) return out;
    }
  };
  const groupOf = (row: ProjectRecord): string => {
    const root = rowRoot(row);
    const up = ancestors(root);
    const init = up.find((d) => initRoots.has(d));
    if (init) return init;
    if (row.ecosystem === 'npm') {
      // the shallowest install root this row was written together with
      const together = up
        .slice(1)
        .filter((d) => (npmByRoot.get(d) ?? []).some((p) => p.packages === row.packages && Math.abs(p.updated - row.updated) < 5000));
      if (together.length) return together[together.length - 1]!;
    }
    return root;
  };
  const groups = new Map<string, ProjectRecord[]>();
  for (const row of rows) {
    const g = groupOf(row);
    groups.set(g, [...(groups.get(g) ?? []), row]);
  }
  const out: ProjectGroup[] = [];
  for (const [root, members] of groups) {
    const real = members.filter((r) => r.ecosystem !== INIT_ECOSYSTEM);
    const ecosystems = [...new Set(real.map((r) => r.ecosystem))].sort();
    // npm's workspace rows repeat the install's package count: count it once per ecosystem
    const perEco = new Map<string, number>();
    for (const r of real) perEco.set(r.ecosystem, Math.max(perEco.get(r.ecosystem) ?? 0, r.packages));
    const init = members.find((r) => r.ecosystem === INIT_ECOSYSTEM);
    out.push({
      root,
      ecosystems,
      initialized: init !== undefined,
      rows: members,
      packages: [...perEco.values()].reduce((a, b) => a + b, 0),
      logicalBytes: real.reduce((s, r) => s + r.logicalBytes, 0),
      files: real.reduce((s, r) => s + r.files, 0),
      projection: members.some((r) => r.projection === 'mount') ? 'mount' : (init?.projection || 'link'),
      methods: [...new Set(real.map((r) => r.method).filter((m) => m !== ''))].sort(),
      lastUsed: Math.max(...members.map((r) => r.updated)),
      exists: exists(root),
    });
  }
  return out.sort((a, b) => (a.root < b.root ? -1 : a.root > b.root ? 1 : 0));
}

// ---------------------------------------------------------------------------
// sharing

export interface ProjectSharing {
  /** bytes of the objects no other project uses */
  uniqueBytes: number;
  /** bytes of the objects this project shares with at least one other */
  sharedBytes: number;
  /** distinct objects its trees reference */
  objects: number;
}

export interface LiveSet {
  /** distinct objects referenced by live projects and the keys they use */
  objects: number;
  objectBytes: number;
  trees: number;
  treeBytes: number;
  keys: number;
  /** registered rows whose directory is gone (gc unregisters them) */
  missingRows: number;
}

export interface SharingStats {
  version: 1;
  fingerprint: string;
  /** ms since the epoch */
  computedAt: number;
  /** how long the computation took */
  ms: number;
  projects: Record<string, ProjectSharing>;
  live: LiveSet;
}

export interface GcEstimate {
  /** objects and bytes no live project references (counters minus the live set) */
  objects: number;
  objectBytes: number;
  trees: number;
  treeBytes: number;
  keys: number;
  projectsDropped: number;
  /** when the live set was computed */
  computedAt: number;
}

const STATS_VERSION = 1;

function statsPath(store: Store): string {
  return join(store.home, 'state', 'project-stats.json');
}

/**
 * What the stats depend on: every row (path, ecosystem, tree, update time —
 * an install that changes a project's keys re-registers it) and whether its
 * directory exists.
 */
export function sharingFingerprint(rows: ProjectRecord[], exists: (path: string) => boolean = existsSync): string {
  const h = createHash('sha256');
  h.update(`v${STATS_VERSION}\n`);
  for (const r of [...rows].sort((a, b) => (a.path + a.ecosystem < b.path + b.ecosystem ? -1 : 1))) {
    h.update(`${r.path}\0${r.ecosystem}\0${r.tree}\0${r.updated}\0${exists(r.path) ? 1 : 0}\n`);
  }
  return h.digest('hex');
}

export function readSharingCache(store: Store, fingerprint: string): SharingStats | undefined {
  try {
    const s = JSON.parse(readFileSync(statsPath(store), 'utf8')) as SharingStats;
    return s.version === STATS_VERSION && s.fingerprint === fingerprint ? s : undefined;
  } catch {
    return undefined;
  }
}

function writeSharingCache(store: Store, stats: SharingStats): void {
  const path = statsPath(store);
  try {
    mkdirSync(dirname(path), { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(stats) + '\n');
    renameSync(tmp, path);
  } catch {
    /* a read-only store: the figures are still returned */
  }
}

/**
 * Every file object a serialized tree references, as (id, size). The id is
 * the first 96 bits of the digest plus the exec bit: enough to tell objects
 * apart in a store (no collision among 10^12 objects is expected) at a
 * third of the memory of full hex names. Reads the binary entries directly:
 * no paths or names are built.
 */
export function forEachTreeObject(buf: Buffer, fn: (id: string, size: number) => void): void {
  if (buf.length < HEADER_SIZE || buf.toString('latin1', 0, 8) !== 'VELOTREE') return;
  const n = buf.readUInt32LE(16);
  if (HEADER_SIZE + ENTRY_SIZE * n > buf.length) return;
  for (let i = 0; i < n; i++) {
    const off = HEADER_SIZE + ENTRY_SIZE * i;
    if (buf[off] !== 2) continue;
    const exec = (buf[off + 1]! & 1) !== 0;
    const size = buf.readUInt32LE(off + 16) + buf.readUInt32LE(off + 20) * 0x1_0000_0000;
    fn(buf.toString('hex', off + 32, off + 44) + (exec ? 'x' : ''), size);
  }
}

export interface ComputeOptions {
  /** called between trees so a UI can stay responsive (e.g. () => setImmediate promise) */
  pause?: () => Promise<void>;
  /** a directory exists (default existsSync; gc's rule for a live project) */
  exists?: (path: string) => boolean;
  /** stop early: the result is not cached */
  signal?: AbortSignal;
}

/** Compute (and cache) the sharing stats; see readSharingCache for the cheap path. */
export async function computeSharingStats(store: Store, options: ComputeOptions = {}): Promise<SharingStats> {
  const t0 = performance.now();
  const exists = options.exists ?? existsSync;
  const rows = listProjects(store);
  const fingerprint = sharingFingerprint(rows, exists);
  const groups = groupProjects(rows, exists);
  const pause = options.pause ?? (async () => {});

  const readBuf = (digest: string): Buffer | null => {
    try {
      return readTreeBuffer(store, digest);
    } catch {
      return null; // a damaged or missing tree keeps nothing alive; verify reports it
    }
  };

  // per object: its size, how many projects use it, and which project last did
  const slotOf = new Map<string, number>();
  let sizes = new Float64Array(1 << 16);
  let owners = new Uint32Array(1 << 16);
  let lastOwner = new Int32Array(1 << 16).fill(-1);
  const slot = (id: string, size: number): number => {
    let s = slotOf.get(id);
    if (s === undefined) {
      s = slotOf.size;
      slotOf.set(id, s);
      if (s >= sizes.length) {
        const grow = <T extends Float64Array | Uint32Array | Int32Array>(a: T, fill?: number): T => {
          const b = new (a.constructor as new (n: number) => T)(a.length * 2);
          if (fill !== undefined) b.fill(fill);
          b.set(a);
          return b;
        };
        sizes = grow(sizes);
        owners = grow(owners);
        lastOwner = grow(lastOwner, -1);
      }
      sizes[s] = size;
    }
    return s;
  };

  const perGroup: Uint32Array[] = [];
  for (const [gi, g] of groups.entries()) {
    const mine: number[] = [];
    for (const row of g.rows) {
      const buf = readBuf(row.tree);
      if (!buf) continue;
      forEachTreeObject(buf, (id, size) => {
        const s = slot(id, size);
        if (lastOwner[s] !== gi) {
          lastOwner[s] = gi;
          owners[s]!++;
          mine.push(s);
        }
      });
      if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
      await pause();
    }
    perGroup.push(Uint32Array.from(mine));
  }
  const projects: Record<string, ProjectSharing> = {};
  for (const [gi, g] of groups.entries()) {
    let unique = 0;
    let shared = 0;
    const mine = perGroup[gi]!;
    for (const s of mine) {
      if (owners[s] === 1) unique += sizes[s]!;
      else shared += sizes[s]!;
    }
    projects[g.root] = { uniqueBytes: unique, sharedBytes: shared, objects: mine.length };
  }

  // the live set, as gc computes it: live rows' trees and the trees of the keys they use
  const liveRows = rows.filter((r) => exists(r.path));
  const liveTrees = new Set(liveRows.map((r) => r.tree));
  const usedKeys = new Set<string>();
  const keyStmt = store.index.prepare('SELECT key FROM project_keys WHERE path = ? AND ecosystem = ?');
  for (const r of liveRows) for (const k of keyStmt.all(r.path, r.ecosystem) as { key: string }[]) usedKeys.add(k.key);
  let liveKeys = 0;
  for (const k of store.index.prepare('SELECT name, tree FROM keys').all() as { name: string; tree: string }[]) {
    if (!usedKeys.has(k.name)) continue;
    liveKeys++;
    liveTrees.add(k.tree);
  }
  const live = new Set<string>();
  let liveBytes = 0;
  let treeBytes = 0;
  let treeCount = 0;
  let sinceYield = 0;
  for (const t of liveTrees) {
    const buf = readBuf(t);
    if (!buf) continue;
    treeCount++;
    treeBytes += buf.length;
    forEachTreeObject(buf, (id, size) => {
      if (live.has(id)) return;
      live.add(id);
      liveBytes += size;
    });
    if (++sinceYield >= 64) {
      sinceYield = 0;
      if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
      await pause();
    }
  }
  const stats: SharingStats = {
    version: STATS_VERSION,
    fingerprint,
    computedAt: Date.now(),
    ms: Math.round(performance.now() - t0),
    projects,
    live: { objects: live.size, objectBytes: liveBytes, trees: treeCount, treeBytes, keys: liveKeys, missingRows: rows.length - liveRows.length },
  };
  writeSharingCache(store, stats);
  return stats;
}

/** What gc would delete, from the counters and the live set (no walk of objects/). */
export function gcEstimate(counters: Record<CounterName, number>, keys: number, stats: SharingStats): GcEstimate {
  return {
    objects: Math.max(0, counters.objects - stats.live.objects),
    objectBytes: Math.max(0, counters.object_bytes - stats.live.objectBytes),
    trees: Math.max(0, counters.trees - stats.live.trees),
    treeBytes: Math.max(0, counters.tree_bytes - stats.live.treeBytes),
    keys: Math.max(0, keys - stats.live.keys),
    projectsDropped: stats.live.missingRows,
    computedAt: stats.computedAt,
  };
}

// ---------------------------------------------------------------------------
// index queries

export interface SharedPackage {
  key: string;
  kind: string;
  /** name@version when it can be told (npm: the package's package.json; uv: the key) */
  name: string;
  /** distinct projects using it */
  projects: number;
  logicalBytes: number;
  /** bytes the sharing saves: (projects − 1) × size */
  savedBytes: number;
}

/**
 * npm and uv package keys used by the most projects. project_keys is
 * aggregated on its own (its key index makes that a scan of one index),
 * the top candidates joined with keys: ~10x faster than joining first on
 * a large index (300k project keys: 30 ms instead of 300 ms).
 */
export function mostSharedPackages(store: Store, limit = 10): SharedPackage[] {
  type Row = { key: string; kind: string; bytes: number; tree: string; n: number };
  const poolSize = Math.max(200, limit * 20);
  // count(*) per key: (path, ecosystem) pairs, one per project for npm and uv keys
  const pool = store.index.prepare('SELECT key, count(*) AS n FROM project_keys GROUP BY key ORDER BY n DESC, key LIMIT ?').all(poolSize) as { key: string; n: number }[];
  const lookup = store.index.prepare('SELECT kind, logical_bytes AS bytes, tree FROM keys WHERE name = ?');
  let rows: Row[] = [];
  for (const c of pool) {
    const k = lookup.get(c.key) as { kind: string; bytes: number; tree: string } | undefined;
    if (k && (k.kind === 'npm' || k.kind === 'uv')) rows.push({ key: c.key, kind: k.kind, bytes: Number(k.bytes), tree: k.tree, n: Number(c.n) });
  }
  if (rows.length < limit && pool.length >= poolSize) {
    // the candidates were mostly other kinds (snapshots, built packages): ask exactly
    rows = store.index
      .prepare(
        `SELECT pk.key AS key, k.kind AS kind, k.logical_bytes AS bytes, k.tree AS tree, count(*) AS n
           FROM project_keys pk JOIN keys k ON k.name = pk.key
          WHERE k.kind IN ('npm', 'uv')
          GROUP BY pk.key ORDER BY n DESC, bytes DESC, key LIMIT ?`,
      )
      .all(limit) as Row[];
  }
  rows.sort((x, y) => Number(y.n) - Number(x.n) || Number(y.bytes) - Number(x.bytes) || (x.key < y.key ? -1 : 1));
  return rows.slice(0, limit).map((r) => {
    const projects = Number(r.n);
    const logicalBytes = Number(r.bytes);
    return { key: r.key, kind: r.kind, name: packageName(store, r.kind, r.key, r.tree), projects, logicalBytes, savedBytes: (projects - 1) * logicalBytes };
  });
}

function packageName(store: Store, kind: string, key: string, tree: string): string {
  if (kind === 'uv') {
    const m = /^uv:([^@]+)@/.exec(key);
    return m ? m[1]!.replace('==', '@') : key;
  }
  try {
    // an npm package tree has its package.json at the top
    const buf = readTreeBuffer(store, tree);
    let found: string | undefined;
    const n = buf.readUInt32LE(16);
    const root = HEADER_SIZE;
    const first = buf.readUInt32LE(root + 32);
    const count = buf.readUInt32LE(root + 36);
    const strings = HEADER_SIZE + ENTRY_SIZE * n;
    for (let i = first; i < first + count && i < n; i++) {
      const off = HEADER_SIZE + ENTRY_SIZE * i;
      const name = buf.toString('utf8', strings + buf.readUInt32LE(off + 8), strings + buf.readUInt32LE(off + 8) + buf.readUInt32LE(off + 12));
      if (name === 'package.json' && buf[off] === 2) {
        found = buf.toString('hex', off + 32, off + 64) + ((buf[off + 1]! & 1) !== 0 ? 'x' : '');
        break;
      }
    }
    if (found) {
      const exec = found.endsWith('x');
      const pkg = JSON.parse(readFileSync(store.objectPath(found.replace(/x$/, ''), exec), 'utf8')) as { name?: string; version?: string };
      if (pkg.name) return `${pkg.name}@${pkg.version ?? '?'}`;
    }
  } catch {
    /* fall through */
  }
  return key.length > 40 ? `${key.slice(0, 37)}…` : key;
}

export interface KindTotals {
  kind: string;
  /** npm, uv, cargo, … (the part of the kind before '-') */
  ecosystem: string;
  keys: number;
  logicalBytes: number;
}

export function keysByKind(store: Store): KindTotals[] {
  const rows = store.index.prepare('SELECT kind, count(*) AS n, sum(logical_bytes) AS bytes FROM keys GROUP BY kind ORDER BY kind').all() as {
    kind: string;
    n: number;
    bytes: number | null;
  }[];
  return rows.map((r) => ({ kind: r.kind || 'other', ecosystem: (r.kind || 'other').split('-')[0]!, keys: Number(r.n), logicalBytes: Number(r.bytes ?? 0) }));
}

export interface EcosystemTotals {
  ecosystem: string;
  projects: number;
  packages: number;
  logicalBytes: number;
  /** package/snapshot keys of this ecosystem in the store */
  keys: number;
  keyBytes: number;
}

/** Projects, packages and stored keys per ecosystem. */
export function ecosystemBreakdown(groups: ProjectGroup[], kinds: KindTotals[]): EcosystemTotals[] {
  const by = new Map<string, EcosystemTotals>();
  const get = (e: string): EcosystemTotals => {
    let t = by.get(e);
    if (!t) by.set(e, (t = { ecosystem: e, projects: 0, packages: 0, logicalBytes: 0, keys: 0, keyBytes: 0 }));
    return t;
  };
  for (const g of groups) {
    for (const e of g.ecosystems) {
      const t = get(e);
      t.projects++;
      const rows = g.rows.filter((r) => r.ecosystem === e);
      t.packages += Math.max(0, ...rows.map((r) => r.packages));
      t.logicalBytes += rows.reduce((s, r) => s + r.logicalBytes, 0);
    }
  }
  for (const k of kinds) {
    const t = get(k.ecosystem);
    t.keys += k.keys;
    t.keyBytes += k.logicalBytes;
  }
  return [...by.values()].sort((a, b) => b.logicalBytes - a.logicalBytes || (a.ecosystem < b.ecosystem ? -1 : 1));
}

/** Live leases: an install (or gc) running in another process right now. */
export function liveLeases(store: Store, alive: (pid: number) => boolean): { kind: string; pid: number; started: number }[] {
  const rows = store.index.prepare('SELECT pid, kind, started FROM leases').all() as { pid: number; kind: string; started: number }[];
  return rows.filter((r) => alive(Number(r.pid))).map((r) => ({ kind: r.kind, pid: Number(r.pid), started: Number(r.started) }));
}

export { readCounters };
