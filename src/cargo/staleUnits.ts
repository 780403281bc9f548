/**
 * Which units of a target dir a snapshot leaves out: the ones no current
 * build uses any more. Cargo never deletes an artifact; after three
 * dependency bumps a target dir holds every earlier version's units, and a
 * snapshot of all of it restores 2–3x what a clean build makes.
 *
 * Cargo names every unit (`<profile>/.fingerprint/<pkg>-<hash>/`, with the
 * same `<hash>` in `deps/<name>-<hash>.*`, `build/<pkg>-<hash>/`,
 * `examples/<name>-<hash>`). In each unit dir, `<kind>-<name>` holds the
 * unit's fingerprint hash (u64, little-endian hex) and `<kind>-<name>.json`
 * its inputs, among them `deps`: the fingerprint hashes of the units it was
 * built against. The rule (roots are chosen per profile dir — debug,
 * release, <triple>/debug … are never weighed against each other, so every
 * profile a project has built stays; dependencies are followed across
 * profile dirs, because a `--target` build's units in `<triple>/debug` use
 * host units — build scripts, proc macros — in `debug`):
 *
 * 1. a unit of a registry (or git) package whose version is not in the
 *    current Cargo.lock is *superseded*; so is every unit built against
 *    one (through `deps`, transitively). The version is read from rustc's
 *    dep-info of the unit (`deps/<crate>-<hash>.d`): its sources sit in
 *    `<name>-<version>/` (cargo's registry sources); a version velo cannot read supersedes
 *    nothing (git dependencies, vendor dirs named without a version);
 * 2. a *root* is a compiled unit (not a build-script run) of a workspace
 *    member that is not superseded. Roots are grouped by everything their fingerprint says except
 *    their dependencies and the compiler (package, kind, target, profile and
 *    mode — `check`, `build` and `test` differ there —, features, path,
 *    flags, compile kind): units of one group are the same crate built
 *    again after its dependencies or the toolchain changed. Of each group
 *    the one cargo wrote last is current (ties: all of them);
 * 3. every unit reachable from a current root through `deps` is used
 *    (registry crates, build scripts and their runs, proc macros);
 * 4. every other unit with a fingerprint is stale: its fingerprint dir,
 *    its `build/` dir, its hash-named files in `deps/` and `examples/`,
 *    and the uplifted copies of those (same inode) leave the snapshot.
 *
 * Step 1 is what makes a test or check unit built before a bump (and
 * not since) stale, and a build after going back to an older Cargo.lock
 * keep the older units cargo found fresh — newer units of the same group
 * are then built against versions the lock no longer has. What step 2
 * cannot tell: two builds of a member under one lock whose only difference
 * is a workspace-internal one (a feature of another member): the newer is
 * kept. A unit left out costs a rebuild in a clone that restores the
 * snapshot, never a wrong build.
 *
 * Anything unreadable (a fingerprint velo cannot parse, no package list)
 * prunes nothing: leaving a unit in costs bytes, leaving a
 * used one out costs a rebuild. The target dir itself is never touched.
 */
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { profileDirs, type WalkedEntry } from './targetWalk.js';

const UNIT_DIR = /^(.+)-([0-9a-f]{16})$/;
/** a hash-named artifact: `<name>-<hash>` with optional extensions */
const HASHED_FILE = /-([0-9a-f]{16})(\.[^/]*)?$/;

interface FingerprintNode {
  /** the profile dir it is in (`debug`, `x86_64-unknown-linux-gnu/release`, …) */
  profile: string;
  /** unit dir name: `<pkg>-<hash>` */
  unit: string;
  pkg: string;
  /** the fingerprint file's name: `lib-geom`, `run-build-script-build-script-build`, … */
  kind: string;
  /** the fingerprint hash as a decimal string (undefined: no hash file — cargo would rebuild the unit) */
  hash: string | undefined;
  deps: string[];
  /** the fingerprint's fields that say which crate this is, without its dependencies and compiler */
  group: string;
  mtimeNs: bigint;
  /** the package version its sources' directory names (`<name>-<version>/`), when there is one */
  version: string | undefined;
}

/** Stale units of one target dir: per profile dir, the unit hashes to leave out. */
export interface StaleUnits {
  /** profile dir (relative, e.g. `debug`) → hashes of stale units */
  byProfile: Map<string, Set<string>>;
  /** how many unit dirs are stale, in all profiles */
  count: number;
}

/** u64 numbers in cargo's fingerprint JSON exceed a double: quote them before parsing. */
function parseFingerprintJson(text: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(text.replace(/([[,:])\s*(\d{16,})(?=\s*[,\]}])/g, '$1"$2"')) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The hash file holds the u64 as little-endian hex; the JSON names dependencies by its decimal value. */
function hashFromFile(text: string): string | undefined {
  const hex = text.trim();
  if (!/^[0-9a-f]{16}$/.test(hex)) return undefined;
  return BigInt(`0x${hex.match(/../g)!.reverse().join('')}`).toString();
}

/**
 * The version in the `<pkg>-<version>/` directory of a unit's sources, read
 * from rustc's dep-info beside its artifacts (`deps/<crate>-<hash>.d`, or
 * `build/<pkg>-<hash>/build_script_build-<hash>.d`): cargo's own dep-info
 * leaves registry sources out.
 */
function versionFromRustcDepInfo(profileAbs: string, depsDFiles: Map<string, string>, unit: string, pkg: string, hash: string): string | undefined {
  let file = depsDFiles.get(hash);
  if (file === undefined) {
    try {
      const name = readdirSync(join(profileAbs, 'build', unit)).find((f) => f.endsWith(`-${hash}.d`));
      if (name !== undefined) file = join(profileAbs, 'build', unit, name);
    } catch {
      return undefined;
    }
  }
  if (file === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const escaped = pkg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`/${escaped}-(\\d+\\.\\d+\\.\\d+(?:[-+][0-9A-Za-z.+]*)?)/`).exec(text);
  return m?.[1];
}

function readNodes(targetDir: string, profile: string, members: Set<string>): FingerprintNode[] | undefined {
  const profileAbs = join(targetDir, profile);
  const fpDir = join(profileAbs, '.fingerprint');
  const nodes: FingerprintNode[] = [];
  // rustc's dep-info files in deps/, by unit hash
  const depsDFiles = new Map<string, string>();
  try {
    for (const f of readdirSync(join(profileAbs, 'deps'))) {
      const m = /-([0-9a-f]{16})\.d$/.exec(f);
      if (m) depsDFiles.set(m[1]!, join(profileAbs, 'deps', f));
    }
  } catch {
    /* no deps/ yet */
  }
  for (const ud of readdirSync(fpDir, { withFileTypes: true })) {
    if (!ud.isDirectory()) continue;
    const m = UNIT_DIR.exec(ud.name);
    if (!m) continue;
    const unitAbs = join(fpDir, ud.name);
    for (const f of readdirSync(unitAbs)) {
      if (!f.endsWith('.json')) continue;
      const kind = f.slice(0, -5);
      const json = parseFingerprintJson(readFileSync(join(unitAbs, f), 'utf8'));
      if (!json || !Array.isArray(json.deps)) return undefined;
      const deps: string[] = [];
      for (const d of json.deps as unknown[]) {
        if (!Array.isArray(d) || typeof d[d.length - 1] !== 'string') return undefined;
        deps.push(d[d.length - 1] as string);
      }
      let hash: string | undefined;
      let mtimeNs = 0n;
      try {
        hash = hashFromFile(readFileSync(join(unitAbs, kind), 'utf8'));
        mtimeNs = lstatSync(join(unitAbs, kind), { bigint: true }).mtimeNs;
      } catch {
        hash = undefined; // invalidated (velo's freshness check) or never finished: cargo rebuilds it
      }
      const { deps: _d, local: _l, rustc: _r, ...identity } = json;
      const group = JSON.stringify([profile, m[1], kind, Object.entries(identity).sort(([a], [b]) => (a < b ? -1 : 1))]);
      const version = members.has(m[1]!) ? undefined : versionFromRustcDepInfo(profileAbs, depsDFiles, ud.name, m[1]!, m[2]!);
      nodes.push({ profile, unit: ud.name, pkg: m[1]!, kind, hash, deps, group, mtimeNs, version });
    }
  }
  return nodes;
}

function isBuildScript(kind: string): boolean {
  return kind.startsWith('build-script-') || kind.startsWith('run-build-script-');
}

/**
 * The stale units among the fingerprints of every profile dir of a target
 * (see the rule above), as `<profile>/<unit dir>`. Profiles are read
 * together because a `--target` build's units in `<triple>/debug` depend on
 * host units (build scripts, proc macros) in `debug`; roots are grouped
 * per profile dir, so no profile's units decide another's.
 * `locked`: name → versions in the current Cargo.lock (undefined: no lock read, nothing superseded by it).
 */
export function staleUnitIds(nodes: FingerprintNode[], members: Set<string>, locked?: Map<string, Set<string>>): Set<string> {
  const byHash = new Map<string, FingerprintNode[]>();
  for (const n of nodes) if (n.hash !== undefined) byHash.set(n.hash, [...(byHash.get(n.hash) ?? []), n]);
  // superseded: a version the lock no longer has, or built against one
  const superseded = new Map<FingerprintNode, boolean>();
  const isSuperseded = (n: FingerprintNode, path: Set<FingerprintNode>): boolean => {
    const known = superseded.get(n);
    if (known !== undefined) return known;
    if (path.has(n)) return false; // a cycle (never in cargo's graph): taints nothing
    path.add(n);
    let out = locked !== undefined && n.version !== undefined && locked.get(n.pkg)?.has(n.version) !== true;
    for (const d of n.deps) {
      if (out) break;
      for (const dep of byHash.get(d) ?? []) if (isSuperseded(dep, path)) out = true;
    }
    path.delete(n);
    superseded.set(n, out);
    return out;
  };
  const isRoot = (n: FingerprintNode): boolean => n.hash !== undefined && members.has(n.pkg) && !isBuildScript(n.kind) && !isSuperseded(n, new Set());
  const newest = new Map<string, bigint>();
  for (const n of nodes) {
    if (!isRoot(n)) continue;
    const t = newest.get(n.group);
    if (t === undefined || n.mtimeNs > t) newest.set(n.group, n.mtimeNs);
  }
  const used = new Set<FingerprintNode>();
  const queue = nodes.filter((n) => isRoot(n) && newest.get(n.group) === n.mtimeNs);
  while (queue.length > 0) {
    const n = queue.pop()!;
    if (used.has(n)) continue;
    used.add(n);
    for (const d of n.deps) for (const dep of byHash.get(d) ?? []) if (!used.has(dep)) queue.push(dep);
  }
  const id = (n: FingerprintNode): string => `${n.profile}/${n.unit}`;
  const usedUnits = new Set([...used].map(id));
  const stale = new Set<string>();
  for (const n of nodes) if (!usedUnits.has(id(n))) stale.add(id(n));
  return stale;
}

/** name → versions of the packages in a Cargo.lock (undefined when there is none or it cannot be read). */
export function lockedVersions(lockText: string | undefined): Map<string, Set<string>> | undefined {
  if (lockText === undefined) return undefined;
  const out = new Map<string, Set<string>>();
  for (const m of lockText.matchAll(/^\[\[package\]\]\s*\nname = "([^"]+)"\s*\nversion = "([^"]+)"/gm)) {
    out.set(m[1]!, (out.get(m[1]!) ?? new Set()).add(m[2]!));
  }
  return out.size > 0 ? out : undefined;
}

/** Find the stale units of a target dir; `members` are the workspace's path packages (none: nothing is pruned). */
export function findStaleUnits(targetDir: string, members: Set<string>, locked?: Map<string, Set<string>>): StaleUnits {
  const byProfile = new Map<string, Set<string>>();
  let count = 0;
  if (members.size === 0) return { byProfile, count };
  const nodes: FingerprintNode[] = [];
  for (const profile of profileDirs(targetDir)) {
    let read: FingerprintNode[] | undefined;
    try {
      read = readNodes(targetDir, profile, members);
    } catch {
      read = undefined;
    }
    // one profile unreadable: its units' dependencies elsewhere cannot be told apart — prune nothing
    if (!read) return { byProfile, count };
    nodes.push(...read);
  }
  const stale = staleUnitIds(nodes, members, locked);
  for (const n of nodes) {
    if (!stale.has(`${n.profile}/${n.unit}`)) continue;
    const hashes = byProfile.get(n.profile) ?? new Set<string>();
    hashes.add(UNIT_DIR.exec(n.unit)![2]!);
    byProfile.set(n.profile, hashes);
  }
  // a hash shared with a used unit of the same profile (never seen, but cheap to rule out) keeps its files
  for (const n of nodes) if (!stale.has(`${n.profile}/${n.unit}`)) byProfile.get(n.profile)?.delete(UNIT_DIR.exec(n.unit)![2]!);
  count = stale.size;
  return { byProfile, count };
}

/**
 * Which walked entries belong to stale units: fingerprint and build dirs
 * (with their contents), hash-named files in deps/ and examples/, and the
 * uplifted copies of those (same device and inode).
 */
export function staleEntryFilter(entries: WalkedEntry[], stale: StaleUnits): (path: string) => boolean {
  if (stale.count === 0) return () => false;
  const dropped = new Set<string>();
  const droppedInodes = new Set<string>();
  const profiles = [...stale.byProfile.keys()].sort((a, b) => b.length - a.length);
  const isStale = (path: string): boolean => {
    for (const p of profiles) {
      if (!path.startsWith(`${p}/`)) continue;
      const rest = path.slice(p.length + 1).split('/');
      const hashes = stale.byProfile.get(p)!;
      if ((rest[0] === '.fingerprint' || rest[0] === 'build') && rest.length >= 2) {
        const m = UNIT_DIR.exec(rest[1]!);
        return m !== null && hashes.has(m[2]!);
      }
      if ((rest[0] === 'deps' || rest[0] === 'examples') && rest.length === 2) {
        const m = HASHED_FILE.exec(rest[1]!);
        return m !== null && hashes.has(m[1]!);
      }
      return false;
    }
    return false;
  };
  for (const e of entries) {
    if (!isStale(e.path)) continue;
    dropped.add(e.path);
    if (e.kind === 'file') droppedInodes.add(`${e.dev}:${e.ino}`);
  }
  // uplifted files (debug/<bin>, debug/lib<name>.rlib, build/…/build-script-build) share the inode of what they copy
  for (const e of entries) if (e.kind === 'file' && droppedInodes.has(`${e.dev}:${e.ino}`)) dropped.add(e.path);
  // in a mounted target they are symlinks to the hash-named files (upliftLinks.ts)
  for (const e of entries) if (e.kind === 'symlink' && e.target !== undefined && dropped.has(posix.join(posix.dirname(e.path), e.target))) dropped.add(e.path);
  return (path) => dropped.has(path);
}
