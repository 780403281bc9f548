/**
 * What velo needs to know about a cargo command line, read without changing
 * it: the subcommand, the toolchain override (`+nightly`), the arguments
 * that change what cargo builds (profile, target triples, features), where
 * the manifest and target dir are, and velo's own flags, which are taken
 * out before cargo sees the arguments. Everything after `--` belongs to the
 * program cargo runs and is passed through untouched.
 */
import { VeloError } from '../errors.js';

/** Subcommands velo restores and snapshots target/ around. */
export const SNAPSHOT_SUBCOMMANDS = ['build', 'check', 'clippy', 'run', 'test'] as const;
export type SnapshotSubcommand = (typeof SNAPSHOT_SUBCOMMANDS)[number];

const SUBCOMMAND_ALIASES: Record<string, SnapshotSubcommand> = { b: 'build', c: 'check', r: 'run', t: 'test' };

/** Options (cargo's, before or after the subcommand) whose value is the next argument. */
const TAKES_VALUE = new Set([
  '--color',
  '--config',
  '-Z',
  '-C',
  '--profile',
  '--target',
  '--features',
  '-F',
  '--manifest-path',
  '--target-dir',
  '--message-format',
  '--package',
  '-p',
  '--exclude',
  '--bin',
  '--example',
  '--test',
  '--bench',
  '--jobs',
  '-j',
  '--timings',
  '--lockfile-path',
  '--artifact-dir',
]);

export interface CargoInvocation {
  /** the arguments to give cargo: the user's, minus velo's own flags */
  cargoArgs: string[];
  /** `+toolchain` when the command line starts with one (rustup) */
  toolchain: string | undefined;
  /** the subcommand as cargo sees it, or undefined (`velo cargo --version`) */
  subcommand: string | undefined;
  /** the subcommand when it is one velo snapshots around */
  snapshotSubcommand: SnapshotSubcommand | undefined;
  /** the cargo profile the build uses: dev, release or a custom one */
  profile: string;
  targets: string[];
  features: string[];
  allFeatures: boolean;
  noDefaultFeatures: boolean;
  manifestPath: string | undefined;
  targetDir: string | undefined;
  quiet: boolean;
  /** velo --force: replace a target/ velo did not make (or that was changed since) */
  force: boolean;
  /** velo --velo-incremental: keep incremental/ in snapshots */
  incremental: boolean;
  /** velo --projection link|mount: how a restored target is projected (default: velo's configuration) */
  projection: 'link' | 'mount' | undefined;
  /** rustflags velo adds from its configuration (remapPathPrefix.ts): part of the snapshot key */
  extraRustflags?: string[] | undefined;
}

function splitFeatures(value: string): string[] {
  return value
    .split(/[\s,]+/)
    .map((f) => f.trim())
    .filter((f) => f !== '');
}

export function parseCargoArgs(args: string[]): CargoInvocation {
  const inv: CargoInvocation = {
    cargoArgs: [],
    toolchain: undefined,
    subcommand: undefined,
    snapshotSubcommand: undefined,
    profile: 'dev',
    targets: [],
    features: [],
    allFeatures: false,
    noDefaultFeatures: false,
    manifestPath: undefined,
    targetDir: undefined,
    quiet: false,
    force: false,
    incremental: false,
    projection: undefined,
  };
  let i = 0;
  if (args[0]?.startsWith('+')) {
    inv.toolchain = args[0].slice(1);
    inv.cargoArgs.push(args[0]);
    i = 1;
  }
  let release = false;
  let profile: string | undefined;
  let projection: 'link' | 'mount' | undefined;
  const veloFlags: string[] = [];
  for (; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      inv.cargoArgs.push(...args.slice(i));
      break;
    }
    if (arg === '--force' || arg === '--velo-incremental') {
      veloFlags.push(arg);
      continue;
    }
    if (arg === '--projection' || arg.startsWith('--projection=')) {
      const value = arg === '--projection' ? args[++i] : arg.slice('--projection='.length);
      if (value !== 'link' && value !== 'mount') throw new VeloError('USAGE', `--projection must be link or mount (got ${JSON.stringify(value ?? '')})`);
      veloFlags.push(arg === '--projection' ? `${arg} ${value}` : arg);
      projection = value;
      continue;
    }
    inv.cargoArgs.push(arg);
    if (!arg.startsWith('-') || arg === '-') {
      if (inv.subcommand === undefined) {
        inv.subcommand = arg;
        const sub = SUBCOMMAND_ALIASES[arg] ?? arg;
        inv.snapshotSubcommand = (SNAPSHOT_SUBCOMMANDS as readonly string[]).includes(sub) ? (sub as SnapshotSubcommand) : undefined;
      }
      continue;
    }
    let name = arg;
    let value: string | undefined;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      name = arg.slice(0, eq);
      value = arg.slice(eq + 1);
    } else if (/^-[FjpZC].+/.test(arg)) {
      name = arg.slice(0, 2);
      value = arg.slice(2);
    } else if (TAKES_VALUE.has(arg)) {
      value = args[i + 1];
      if (value !== undefined) {
        inv.cargoArgs.push(value);
        i++;
      }
    }
    switch (name) {
      case '--release':
      case '-r':
        release = true;
        break;
      case '--profile':
        profile = value;
        break;
      case '--target':
        if (value) inv.targets.push(value);
        break;
      case '--features':
      case '-F':
        if (value) inv.features.push(...splitFeatures(value));
        break;
      case '--all-features':
        inv.allFeatures = true;
        break;
      case '--no-default-features':
        inv.noDefaultFeatures = true;
        break;
      case '--manifest-path':
        inv.manifestPath = value;
        break;
      case '--target-dir':
        inv.targetDir = value;
        break;
      case '--quiet':
      case '-q':
        inv.quiet = true;
        break;
    }
  }
  if (inv.snapshotSubcommand) {
    inv.force = veloFlags.includes('--force');
    inv.incremental = veloFlags.includes('--velo-incremental');
    inv.projection = projection;
  } else if (veloFlags.length > 0) {
    // not a command velo wraps (`cargo install --force`): the flags are cargo's, as they were
    return { ...inv, cargoArgs: [...args] };
  }
  inv.profile = profile ?? (release ? 'release' : 'dev');
  inv.targets.sort();
  inv.features = [...new Set(inv.features)].sort();
  return inv;
}


/** The profile dirs a build writes: `<dir>` (host artifacts too) and `<triple>/<dir>` for each --target. */
export function buildProfileDirs(inv: Pick<CargoInvocation, 'profile' | 'targets'>): string[] {
  const dir = inv.profile === 'dev' || inv.profile === 'test' ? 'debug' : inv.profile === 'bench' ? 'release' : inv.profile;
  return [dir, ...inv.targets.map((t) => `${t}/${dir}`)];
}
