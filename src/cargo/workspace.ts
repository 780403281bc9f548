/**
 * Where a cargo project lives: its workspace root (where Cargo.lock is),
 * and its target dir. `locateWorkspace` guesses from the filesystem with a
 * few stats, for the no-op path; `cargoMetadata` asks cargo itself and is
 * what the slow paths trust.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { VeloError } from '../errors.js';

export interface WorkspaceLocation {
  /** directory of the workspace's root Cargo.toml */
  root: string;
  /** the target dir cargo will use (CARGO_TARGET_DIR, --target-dir, else <root>/target) */
  targetDir: string;
  /** true when targetDir came from the environment or the command line, not a guess */
  targetDirExplicit: boolean;
}

function hasWorkspaceTable(manifest: string): boolean {
  try {
    return /^\s*\[workspace\]/m.test(readFileSync(manifest, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * The workspace root as cargo would find it, approximately: the nearest
 * Cargo.toml at or above the start, then the nearest ancestor with a
 * [workspace] table (cargo also checks membership; velo re-checks with
 * `cargo metadata` before it restores anything).
 */
export function locateWorkspace(
  cwd: string,
  options: { manifestPath?: string | undefined; targetDir?: string | undefined; env: NodeJS.ProcessEnv },
): WorkspaceLocation {
  let start: string;
  if (options.manifestPath) start = dirname(resolve(cwd, options.manifestPath));
  else {
    let dir = resolve(cwd);
    for (;;) {
      if (existsSync(join(dir, 'Cargo.toml'))) break;
      const up = dirname(dir);
      if (up === dir) throw new VeloError('NOT_FOUND', `could not find Cargo.toml in ${cwd} or any parent directory`);
      dir = up;
    }
    start = dir;
  }
  let root = start;
  if (!hasWorkspaceTable(join(start, 'Cargo.toml'))) {
    for (let dir = dirname(start); ; dir = dirname(dir)) {
      if (existsSync(join(dir, 'Cargo.toml')) && hasWorkspaceTable(join(dir, 'Cargo.toml'))) {
        root = dir;
        break;
      }
      if (dirname(dir) === dir) break;
    }
  }
  const fromArgs = options.targetDir ? resolve(cwd, options.targetDir) : undefined;
  const fromEnv = options.env.CARGO_TARGET_DIR || options.env.CARGO_BUILD_TARGET_DIR;
  const explicit = fromArgs ?? (fromEnv ? (isAbsolute(fromEnv) ? fromEnv : resolve(cwd, fromEnv)) : undefined);
  return { root, targetDir: explicit ?? join(root, 'target'), targetDirExplicit: explicit !== undefined };
}

export interface CargoPackage {
  name: string;
  version: string;
  /** null for path packages */
  source: string | null;
  manifestPath: string;
}

export interface CargoMetadata {
  workspaceRoot: string;
  targetDirectory: string;
  /** the build dir (cargo ≥ 1.91 reports it; equal to targetDirectory unless configured) */
  buildDirectory: string;
  packages: CargoPackage[];
}

interface RawMetadata {
  workspace_root: string;
  target_directory: string;
  build_directory?: string;
  packages: { name: string; version: string; source: string | null; manifest_path: string }[];
}

/** `cargo metadata --offline`: with noDeps only the workspace members (no resolution). */
export function cargoMetadata(options: {
  cwd: string;
  env: NodeJS.ProcessEnv;
  cargo: string;
  toolchain?: string | undefined;
  manifestPath?: string | undefined;
  noDeps: boolean;
}): Promise<CargoMetadata> {
  const args = [
    ...(options.toolchain ? [`+${options.toolchain}`] : []),
    'metadata',
    '--format-version',
    '1',
    '--offline',
    ...(options.noDeps ? ['--no-deps'] : []),
    ...(options.manifestPath ? ['--manifest-path', options.manifestPath] : []),
  ];
  return new Promise((resolvePromise, reject) => {
    execFile(options.cargo, args, { cwd: options.cwd, env: options.env, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          reject(new VeloError('NOT_FOUND', `cannot run cargo (${options.cargo}): not found`, { hint: 'install Rust (https://rustup.rs) or put cargo on PATH' }));
        } else {
          reject(new VeloError('TOOL_FAILED', `cargo metadata failed: ${String(stderr).trim() || err.message}`));
        }
        return;
      }
      try {
        const raw = JSON.parse(stdout) as RawMetadata;
        resolvePromise({
          workspaceRoot: raw.workspace_root,
          targetDirectory: raw.target_directory,
          buildDirectory: raw.build_directory ?? raw.target_directory,
          packages: raw.packages.map((p) => ({ name: p.name, version: p.version, source: p.source, manifestPath: p.manifest_path })),
        });
      } catch (e) {
        reject(new VeloError('TOOL_FAILED', `cargo metadata printed something velo cannot read: ${(e as Error).message}`));
      }
    });
  });
}
