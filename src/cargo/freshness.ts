/**
 * Making a restored target dir tell cargo the truth.
 *
 * Cargo decides that a unit of a *path* package (a workspace member) is
 * fresh when its fingerprint matches and none of its source files is newer
 * than its dep-info file; a build-script run compares the files named by
 * `rerun-if-changed` with its `output` file. It never looks at contents.
 * Registry and git packages are taken as immutable: their sources are not
 * in the dep-info (their build scripts' rerun-if-changed files still are).
 *
 * Restored into another checkout, that goes wrong both ways: a fresh
 * checkout has newer mtimes than the snapshot, so identical sources
 * rebuild; and a checkout whose sources differ but are older would be taken
 * as fresh — a wrong binary. So when velo stores a snapshot it records, per
 * unit, the inputs cargo checks and the content digest of each input of a
 * path package (the manifest). On restore, before the new target is
 * swapped in:
 *
 * - a unit whose inputs all match keeps its fingerprint;
 * - a unit with an input changed, missing, or not checkable loses its
 *   fingerprint file, so cargo rebuilds it (and, through its fingerprint,
 *   everything that depends on it);
 * - when an input (matching, or of a registry package) is newer than what
 *   cargo compares it with, every file of the restored dir gets one and the
 *   same mtime, a little before the restore began. Cargo rebuilds only on
 *   "newer", so equal mtimes keep every output-versus-dependency comparison
 *   fresh, and every source written before the restore is now older than
 *   its dep-info. Otherwise the stored mtimes are kept exactly.
 *
 * The check is planned over a view of the restored target (planFreshness):
 * a staging directory on disk (copy and reflink restores, applyFreshness),
 * or the snapshot's tree before it is mounted (mountTree.ts), where the
 * removals and the one mtime are applied to the tree's entries instead.
 */
import { lstatSync, readdirSync, readFileSync, statSync, unlinkSync, utimesSync, type Dirent } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import { hashBuffer } from '../store/hash.js';
import { parseEncodedDepInfo } from './depInfo.js';
import { diskSource, profileDirs, sourceProfileDirs, type WalkSource } from './targetWalk.js';

export const MANIFEST_PATH = '.velo/freshness.json';
const MANIFEST_VERSION = 1;

/** How an input's path is resolved on restore. */
export type InputBase = 'package' | 'project' | 'absolute';

export interface UnitInput {
  base: InputBase;
  path: string;
  /** content digest; null for inputs of registry/git packages, which cargo takes as immutable */
  digest: string | null;
}

export interface UnitRecord {
  /** target-relative path of the unit's fingerprint hash file */
  fingerprint: string;
  /** target-relative path of the file cargo compares the inputs' mtimes with */
  reference: string;
  /** the package root: relative to the project root when inside it, else absolute; null when unknown */
  packageRoot: string | null;
  inputs: UnitInput[];
  /** false when the unit cannot be trusted in another checkout (stale at store time, unknown package, …) */
  verifiable: boolean;
}

export interface FreshnessManifest {
  version: 1;
  /** the workspace root the snapshot was built in */
  project: string;
  units: UnitRecord[];
}

export interface KnownPackage {
  name: string;
  /** absolute directory of the package's Cargo.toml */
  root: string;
  /** a path package (source null in cargo metadata) */
  path: boolean;
}

const UNIT_DIR_HASH = /-[0-9a-f]{16}$/;

function toPosix(p: string): string {
  return sep === '/' ? p : p.split(sep).join('/');
}

function isInside(child: string, parent: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** Digest and newest mtime of a file, or of a directory's files (rerun-if-changed may name a directory). */
function digestPath(abs: string, withDigest: boolean): { digest: string; mtimeNs: bigint } | undefined {
  let st;
  try {
    st = statSync(abs, { bigint: true });
  } catch {
    return undefined;
  }
  if (st.isFile()) return { digest: withDigest ? hashBuffer(readFileSync(abs)) : '', mtimeNs: st.mtimeNs };
  if (!st.isDirectory()) return undefined;
  const parts: string[] = [];
  let newest = st.mtimeNs;
  const walk = (dir: string, rel: string): void => {
    for (const d of readdirSync(dir, { withFileTypes: true }).sort(byName)) {
      const p = join(dir, d.name);
      const r = rel ? `${rel}/${d.name}` : d.name;
      if (d.isDirectory()) walk(p, r);
      else {
        const s = statSync(p, { bigint: true });
        if (s.mtimeNs > newest) newest = s.mtimeNs;
        if (withDigest) parts.push(`${r}\0${hashBuffer(readFileSync(p))}`);
      }
    }
  };
  try {
    walk(abs, '');
  } catch {
    return undefined;
  }
  return { digest: withDigest ? hashBuffer(Buffer.from(parts.join('\n'))) : '', mtimeNs: newest };
}

interface LocalEntry {
  CheckDepInfo?: { dep_info: string };
  RerunIfChanged?: { output: string; paths: string[] };
}

function readJson(path: string): { local?: LocalEntry[] } | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as { local?: LocalEntry[] };
  } catch {
    return undefined;
  }
}

function mtimeOf(path: string): bigint | undefined {
  try {
    return lstatSync(path, { bigint: true }).mtimeNs;
  } catch {
    return undefined;
  }
}

/**
 * Read every unit's fingerprint in a just-built target dir and record what
 * cargo will check: the inputs of path-package units with their digests,
 * the rerun-if-changed files of registry packages by path.
 */
export function buildFreshnessManifest(targetDir: string, projectRoot: string, packages: KnownPackage[]): FreshnessManifest {
  const known = new Map<string, KnownPackage[]>();
  for (const p of packages) known.set(p.name, [...(known.get(p.name) ?? []), p]);
  const units: UnitRecord[] = [];
  for (const profile of profileDirs(targetDir)) {
    const fpDir = join(targetDir, profile, '.fingerprint');
    let unitDirs: Dirent[];
    try {
      unitDirs = readdirSync(fpDir, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const ud of unitDirs) {
      if (!ud.isDirectory()) continue;
      const candidates = known.get(ud.name.replace(UNIT_DIR_HASH, '')) ?? [];
      const unitAbs = join(fpDir, ud.name);
      for (const f of readdirSync(unitAbs)) {
        if (!f.endsWith('.json')) continue;
        const fingerprint = `${profile}/.fingerprint/${ud.name}/${f.slice(0, -5)}`;
        const record = recordUnit(targetDir, projectRoot, fingerprint, join(unitAbs, f), candidates);
        if (record) units.push(record);
      }
    }
  }
  units.sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : a.fingerprint > b.fingerprint ? 1 : 0));
  return { version: MANIFEST_VERSION, project: projectRoot, units };
}

function recordUnit(targetDir: string, projectRoot: string, fingerprint: string, jsonPath: string, candidates: KnownPackage[]): UnitRecord | undefined {
  const pathCandidates = candidates.filter((c) => c.path);
  // a unit of a path package when any package of that name is one (cargo metadata lists what is in the graph)
  const isPathUnit = pathCandidates.length > 0 || candidates.length === 0;
  const pkgRoot = isPathUnit && pathCandidates.length === 1 ? pathCandidates[0]!.root : undefined;
  const packageRoot = pkgRoot === undefined ? null : isInside(pkgRoot, projectRoot) ? toPosix(relative(projectRoot, pkgRoot)) : pkgRoot;
  const json = readJson(jsonPath);
  if (!json || !Array.isArray(json.local)) return { fingerprint, reference: fingerprint, packageRoot, inputs: [], verifiable: false };
  const raw: { base: 'package' | 'absolute'; path: string }[] = [];
  let reference: string | undefined;
  let verifiable = true;
  for (const local of json.local) {
    if (local.CheckDepInfo) {
      reference = local.CheckDepInfo.dep_info;
      let files;
      try {
        files = parseEncodedDepInfo(readFileSync(join(targetDir, reference)));
      } catch {
        files = undefined;
      }
      if (!files) {
        verifiable = false;
        continue;
      }
      for (const f of files) {
        if (f.kind === 'package') raw.push({ base: 'package', path: f.path });
        else if (isAbsolute(f.path)) raw.push({ base: 'absolute', path: f.path });
        // build-root-relative: a file of the snapshot itself
      }
    } else if (local.RerunIfChanged) {
      reference = local.RerunIfChanged.output;
      for (const p of local.RerunIfChanged.paths) raw.push(isAbsolute(p) ? { base: 'absolute', path: p } : { base: 'package', path: p });
    }
  }
  if (reference === undefined || (raw.length === 0 && verifiable)) return undefined;
  const refMtime = mtimeOf(join(targetDir, reference));
  if (refMtime === undefined) verifiable = false;
  const inputs: UnitInput[] = [];
  for (const r of raw) {
    if (r.base === 'package' && !isPathUnit) {
      // a registry/git package: immutable sources, only their mtimes matter (one entry per candidate version)
      for (const c of candidates) inputs.push({ base: 'absolute', path: join(c.root, r.path), digest: null });
      continue;
    }
    let abs: string;
    let input: Omit<UnitInput, 'digest'>;
    if (r.base === 'package') {
      if (pkgRoot === undefined) {
        verifiable = false; // a path package velo cannot place (unknown or ambiguous name)
        continue;
      }
      abs = join(pkgRoot, r.path);
      input = { base: 'package', path: r.path };
    } else {
      abs = r.path;
      if (isInside(abs, targetDir)) continue; // a file of the snapshot itself
      input = isInside(abs, projectRoot) ? { base: 'project', path: toPosix(relative(projectRoot, abs)) } : { base: 'absolute', path: abs };
    }
    const d = digestPath(abs, true);
    if (!d) {
      verifiable = false;
      continue;
    }
    if (refMtime !== undefined && d.mtimeNs > refMtime) verifiable = false; // cargo already sees this unit as stale
    inputs.push({ ...input, digest: d.digest });
  }
  if (inputs.length === 0 && verifiable) return undefined;
  return { fingerprint, reference, packageRoot, inputs, verifiable };
}

export interface FreshnessResult {
  /** units in the manifest */
  units: number;
  /** units whose inputs all matched what is in the project now */
  kept: number;
  /** fingerprints velo removed so cargo rebuilds those units */
  invalidated: string[];
  /** every file was given one mtime (the checkout is newer than the snapshot) */
  restamped: boolean;
}

/** What the freshness check reads of a restored target: a directory on disk, or a tree. */
export interface FreshnessView {
  source: WalkSource;
  /** a file's contents, undefined when it is missing */
  read(rel: string): Buffer | undefined;
  /** a file's mtime (not following symlinks), undefined when it is missing */
  mtimeNs(rel: string): bigint | undefined;
}

/** What to do to a restored target so it tells cargo the truth. */
export interface FreshnessPlan {
  result: FreshnessResult;
  /** target-relative files to delete (invalidated units' fingerprints and dep-info/output files) */
  remove: string[];
  /** the one mtime every file gets, when the checkout is newer than the snapshot */
  stampNs: bigint | undefined;
}

export function diskView(dir: string): FreshnessView {
  return {
    source: diskSource(dir),
    read(rel) {
      try {
        return readFileSync(join(dir, rel));
      } catch {
        return undefined;
      }
    },
    mtimeNs: (rel) => mtimeOf(join(dir, rel)),
  };
}

export function parseManifest(buf: Buffer): FreshnessManifest | undefined {
  try {
    const m = JSON.parse(buf.toString('utf8')) as FreshnessManifest;
    if (m.version !== MANIFEST_VERSION || !Array.isArray(m.units) || typeof m.project !== 'string') return undefined;
    return m;
  } catch {
    return undefined;
  }
}

function resolveInput(unit: UnitRecord, input: UnitInput, projectRoot: string, sameProject: boolean): string | undefined {
  if (input.base === 'absolute') return input.path;
  if (input.base === 'project') {
    // cargo recorded this path absolutely: in another checkout it would look at the old one
    return sameProject ? join(projectRoot, input.path) : undefined;
  }
  if (unit.packageRoot === null) return undefined;
  return join(isAbsolute(unit.packageRoot) ? unit.packageRoot : join(projectRoot, unit.packageRoot), input.path);
}

/**
 * Check a restored (not yet swapped in or mounted) target against the
 * project's sources: which units to invalidate, and whether to re-stamp
 * (the checkout is newer). Without a manifest every unit that checks
 * sources is invalidated: velo cannot tell what it was built from.
 */
export function planFreshness(view: FreshnessView, projectRoot: string, manifest: FreshnessManifest | undefined, nowMs = Date.now()): FreshnessPlan {
  const result: FreshnessResult = { units: 0, kept: 0, invalidated: [], restamped: false };
  const remove: string[] = [];
  const invalidate = (fingerprint: string, reference: string | undefined): void => {
    result.invalidated.push(fingerprint);
    remove.push(fingerprint);
    if (reference !== undefined) remove.push(reference);
  };
  if (manifest === undefined) {
    for (const u of sourceUnits(view)) invalidate(u.fingerprint, u.reference);
    return { result, remove, stampNs: undefined };
  }
  const sameProject = manifest.project === projectRoot;
  let needStamp = false;
  for (const unit of manifest.units) {
    result.units++;
    let ok = unit.verifiable;
    let newest = 0n;
    if (ok) {
      for (const input of unit.inputs) {
        const abs = resolveInput(unit, input, projectRoot, sameProject);
        const d = abs === undefined ? undefined : digestPath(abs, input.digest !== null);
        if (input.digest === null) {
          // registry sources: cargo reruns on its own if they are missing; newer ones only need the stamp
          if (d && d.mtimeNs > newest) newest = d.mtimeNs;
          continue;
        }
        if (!d || d.digest !== input.digest) {
          ok = false;
          break;
        }
        if (d.mtimeNs > newest) newest = d.mtimeNs;
      }
    }
    if (!ok) {
      invalidate(unit.fingerprint, unit.reference);
      continue;
    }
    result.kept++;
    const ref = view.mtimeNs(unit.reference);
    if (ref === undefined || newest > ref) needStamp = true;
  }
  result.restamped = needStamp;
  // a little before now: a source written from now on is newer than the stamp
  return { result, remove, stampNs: needStamp ? BigInt(nowMs - 20) * 1_000_000n : undefined };
}

/** planFreshness() on a staging directory, applied there: files removed, every mtime set when needed. */
export function applyFreshness(stagingDir: string, projectRoot: string, manifest: FreshnessManifest | undefined, nowMs = Date.now()): FreshnessResult {
  const plan = planFreshness(diskView(stagingDir), projectRoot, manifest, nowMs);
  for (const rel of plan.remove) {
    try {
      unlinkSync(join(stagingDir, rel));
    } catch {
      /* already gone */
    }
  }
  if (plan.stampNs !== undefined) restampTree(stagingDir, Number(plan.stampNs / 1_000_000n) / 1000);
  return plan.result;
}

/*
 * Why an invalidated unit loses two files: removing the fingerprint file
 * alone is not enough — cargo would rebuild the unit but take its
 * dependents as fresh, because their fingerprints hash the unit's
 * (unchanged) fingerprint and the filesystem check passed when the build was
 * planned. Removing the file cargo compares the inputs with (the dep-info,
 * or a build script's `output`) makes the unit's filesystem status stale,
 * and cargo carries that to every dependent ("stale dependency").
 */

function parseJson(buf: Buffer | undefined): { local?: LocalEntry[] } | undefined {
  if (!buf) return undefined;
  try {
    return JSON.parse(buf.toString('utf8')) as { local?: LocalEntry[] };
  } catch {
    return undefined;
  }
}

function referenceOf(json: { local?: LocalEntry[] } | undefined): string | undefined {
  for (const local of json?.local ?? []) {
    if (local.CheckDepInfo) return local.CheckDepInfo.dep_info;
    if (local.RerunIfChanged) return local.RerunIfChanged.output;
  }
  return undefined;
}

/** Does a unit compare source mtimes (a path package, or inputs outside the target)? Unknown: yes. */
function checksSources(view: FreshnessView, json: { local?: LocalEntry[] } | undefined): boolean {
  if (!json || !Array.isArray(json.local)) return true;
  for (const local of json.local) {
    if (local.RerunIfChanged) return true;
    if (local.CheckDepInfo) {
      const buf = view.read(local.CheckDepInfo.dep_info);
      let files;
      try {
        files = buf ? parseEncodedDepInfo(buf) : undefined;
      } catch {
        return true;
      }
      if (!files || files.some((f) => f.kind === 'package' || isAbsolute(f.path))) return true;
    }
  }
  return false;
}

/** Every unit of the target that checks sources: what a restore without a manifest invalidates. */
function sourceUnits(view: FreshnessView): { fingerprint: string; reference: string | undefined }[] {
  const found: { fingerprint: string; reference: string | undefined }[] = [];
  for (const profile of sourceProfileDirs(view.source)) {
    const fpDir = `${profile}/.fingerprint`;
    for (const ud of view.source.list(fpDir)) {
      if (!ud.dir) continue;
      const unitRel = `${fpDir}/${ud.name}`;
      for (const f of view.source.list(unitRel)) {
        if (f.dir || !f.name.endsWith('.json')) continue;
        const json = parseJson(view.read(`${unitRel}/${f.name}`));
        if (!checksSources(view, json)) continue;
        found.push({ fingerprint: `${unitRel}/${f.name.slice(0, -5)}`, reference: referenceOf(json) });
      }
    }
  }
  return found;
}

/** Give every file and directory under root (and root) one mtime. */
function restampTree(root: string, seconds: number): void {
  const walk = (dir: string): void => {
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, d.name);
      if (d.isDirectory()) walk(p);
      else if (d.isFile()) utimesSync(p, seconds, seconds);
    }
    utimesSync(dir, seconds, seconds);
  };
  walk(root);
}

/**
 * How many invalidated units the build in `profiles` (buildProfileDirs())
 * can rebuild: one per unit dir (a unit may have several fingerprints),
 * other profiles' units left out — they wait for a build of that profile.
 */
export function invalidatedUnits(invalidated: string[], profiles: string[]): number {
  const units = new Set<string>();
  for (const fp of invalidated) {
    const at = fp.lastIndexOf('/.fingerprint/');
    if (at < 0 || !profiles.includes(fp.slice(0, at))) continue;
    units.add(fp.slice(0, fp.indexOf('/', at + '/.fingerprint/'.length)));
  }
  return units.size;
}
