/**
 * The snapshot key: what must be equal for one target dir to be worth
 * restoring into another. Cargo.lock (the exact dependency versions),
 * `rustc -vV` (the compiler), and the inputs that change artifacts: the
 * profile, the target triples, the features, and the flags cargo passes to
 * rustc from the environment (RUSTFLAGS and friends, CARGO_PROFILE_*).
 *
 * A key only chooses which snapshot to restore. It is not what makes a
 * restored target correct: cargo's own fingerprints still decide what is
 * fresh, and velo checks the sources of path packages on restore
 * (freshness.ts). So a setting the key misses (say rustflags in
 * .cargo/config.toml) costs a rebuild, never a wrong binary.
 */
import type { CargoInvocation } from './cargoArgs.js';

/** node:crypto, loaded on first use: the no-op path never hashes (see keyMaterial). */
function sha256(data: string | Buffer): string {
  return process.getBuiltinModule('node:crypto').createHash('sha256').update(data).digest('hex');
}

export interface SnapshotKeyParts {
  lock: string;
  rustc: string;
  profile: string;
  targets: string[];
  features: string[];
  allFeatures: boolean;
  noDefaultFeatures: boolean;
  env: [string, string][];
  /** rustflags velo adds (cargo.remapPathPrefix); absent when none, so other keys keep their ids */
  extraRustflags?: string[];
}

export interface SnapshotKey {
  /** 32 hex characters */
  id: string;
  parts: SnapshotKeyParts;
}

const ENV_EXACT = ['RUSTFLAGS', 'CARGO_ENCODED_RUSTFLAGS', 'CARGO_BUILD_RUSTFLAGS', 'CARGO_BUILD_TARGET', 'RUSTC_BOOTSTRAP'];
const ENV_PATTERNS = [/^CARGO_PROFILE_/, /^CARGO_TARGET_[A-Z0-9_]+_RUSTFLAGS$/, /^CARGO_TARGET_[A-Z0-9_]+_LINKER$/];

/** The environment variables that change what rustc produces. */
export function artifactEnv(env: NodeJS.ProcessEnv): [string, string][] {
  const out: [string, string][] = [];
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || value === '') continue;
    if (ENV_EXACT.includes(name) || ENV_PATTERNS.some((re) => re.test(name))) out.push([name, value]);
  }
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

export function lockDigest(lockBytes: Buffer | undefined): string {
  return lockBytes === undefined ? 'none' : sha256(lockBytes);
}

function keyParts(inv: CargoInvocation, lock: string, rustcVerbose: string, env: NodeJS.ProcessEnv): SnapshotKeyParts {
  return {
    lock,
    rustc: rustcVerbose,
    profile: inv.profile,
    targets: inv.targets,
    features: inv.features,
    allFeatures: inv.allFeatures,
    noDefaultFeatures: inv.noDefaultFeatures,
    env: artifactEnv(env),
    ...(inv.extraRustflags?.length ? { extraRustflags: inv.extraRustflags } : {}),
  };
}

export function snapshotKey(inv: CargoInvocation, lock: string, rustcVerbose: string, env: NodeJS.ProcessEnv): SnapshotKey {
  const parts = keyParts(inv, lock, rustcVerbose, env);
  return { id: sha256(JSON.stringify(['velo-cargo-key-1', parts])).slice(0, 32), parts };
}

/**
 * The key's inputs as a string, with Cargo.lock named by its stat instead of
 * its digest. Stored in the target's state beside the key id: when it is
 * equal on the next run, the key id is the stored one, and the no-op path
 * neither reads Cargo.lock nor loads a hash function.
 */
export function keyMaterial(inv: CargoInvocation, lockStat: string, rustcVerbose: string, env: NodeJS.ProcessEnv): string {
  return JSON.stringify(keyParts(inv, `stat:${lockStat}`, rustcVerbose, env));
}

/** The key a matching keyMaterial stands for (its parts name the lock by stat). */
export function cachedKey(id: string, inv: CargoInvocation, lockStat: string, rustcVerbose: string, env: NodeJS.ProcessEnv): SnapshotKey {
  return { id, parts: keyParts(inv, `stat:${lockStat}`, rustcVerbose, env) };
}

/** A short human summary of a key, for status and messages. */
export function describeKey(parts: SnapshotKeyParts): string {
  const bits = [parts.profile];
  if (parts.targets.length > 0) bits.push(parts.targets.join(','));
  if (parts.allFeatures) bits.push('all-features');
  else if (parts.features.length > 0) bits.push(`features=${parts.features.join(',')}`);
  if (parts.noDefaultFeatures) bits.push('no-default-features');
  const release = /^release: (.*)$/m.exec(parts.rustc)?.[1];
  if (release) bits.push(`rustc ${release}`);
  if (parts.env.length > 0) bits.push(parts.env.map(([k]) => k).join(','));
  if (parts.extraRustflags?.length) bits.push('remap-path-prefix');
  return bits.join(' ');
}
