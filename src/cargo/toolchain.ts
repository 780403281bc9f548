/**
 * The compiler a build will use, as `rustc -vV` describes it (version,
 * commit, host, LLVM). It is part of every snapshot key: artifacts of one
 * rustc are useless to another. The same rustc cargo would pick: $RUSTC,
 * else `rustc` on PATH (through rustup, with the `+toolchain` override and
 * the project's rust-toolchain file, hence cwd = the workspace root).
 */
import { execFile } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { VeloError } from '../errors.js';

export interface RustcInfo {
  /** the full `rustc -vV` output, trimmed */
  verbose: string;
  release: string;
  host: string;
}

export function rustcCommand(env: NodeJS.ProcessEnv): string {
  return env.RUSTC || 'rustc';
}

export function cargoCommand(env: NodeJS.ProcessEnv): string {
  return env.CARGO || 'cargo';
}

export function parseRustcVerbose(text: string): RustcInfo {
  const verbose = text.trim();
  const field = (name: string): string => new RegExp(`^${name}: (.*)$`, 'm').exec(verbose)?.[1]?.trim() ?? '';
  return { verbose, release: field('release'), host: field('host') };
}

export function rustcInfo(options: { env: NodeJS.ProcessEnv; cwd: string; toolchain?: string | undefined }): Promise<RustcInfo> {
  const rustc = rustcCommand(options.env);
  const args = [...(options.toolchain ? [`+${options.toolchain}`] : []), '-vV'];
  return new Promise((resolve, reject) => {
    execFile(rustc, args, { cwd: options.cwd, env: options.env, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'EACCES') {
          reject(
            new VeloError('NOT_FOUND', `cannot run rustc (${rustc}): ${code === 'ENOENT' ? 'not found' : 'permission denied'}`, {
              hint: 'velo cargo needs the Rust compiler: install it (https://rustup.rs), put it on PATH, or set RUSTC',
            }),
          );
        } else {
          const detail = String(stderr).trim() || err.message;
          reject(new VeloError('TOOL_FAILED', `\`${rustc} ${args.join(' ')}\` failed: ${detail}`));
        }
        return;
      }
      const info = parseRustcVerbose(String(stdout));
      if (!info.release) {
        reject(new VeloError('TOOL_FAILED', `\`${rustc} -vV\` printed something that does not look like rustc: ${info.verbose.slice(0, 200)}`));
        return;
      }
      resolve(info);
    });
  });
}

/** inode, size and mtime of a path, or '-': a cheap "has it changed" token. */
export function statBits(path: string): string {
  try {
    const st = statSync(path, { bigint: true });
    return `${st.ino}:${st.size}:${st.mtimeNs}`;
  } catch {
    return '-';
  }
}

/**
 * A cheap fingerprint of "which rustc would run here", from stats alone:
 * the environment that picks it, the rustc found on PATH, rustup's settings,
 * its toolchains' rustc binaries and update hashes, and rust-toolchain files
 * from cwd up. When it is unchanged, the `rustc -vV` output cached in the
 * target's state is reused, which keeps a process spawn off the no-op path.
 * (The key stored after a build always comes from a real `rustc -vV`.)
 */
export function toolchainStamp(options: { env: NodeJS.ProcessEnv; cwd: string; toolchain?: string | undefined }): string {
  const env = options.env;
  const parts: string[] = [
    options.toolchain ?? '',
    env.RUSTC ?? '',
    env.RUSTUP_TOOLCHAIN ?? '',
    env.RUSTUP_HOME ?? '',
    env.PATH ?? '',
  ];
  const rustc = rustcCommand(env);
  if (rustc.includes('/')) parts.push(statBits(rustc));
  else {
    for (const dir of (env.PATH ?? '').split(delimiter)) {
      if (!dir) continue;
      const bits = statBits(join(dir, rustc));
      if (bits !== '-') {
        parts.push(join(dir, rustc), bits);
        break;
      }
    }
  }
  const rustupHome = env.RUSTUP_HOME || join(homedir(), '.rustup');
  parts.push(statBits(join(rustupHome, 'settings.toml')));
  for (const sub of ['toolchains', 'update-hashes']) {
    let names: string[] = [];
    try {
      names = readdirSync(join(rustupHome, sub)).sort();
    } catch {
      /* no rustup */
    }
    for (const n of names) parts.push(n, statBits(sub === 'toolchains' ? join(rustupHome, sub, n, 'bin', 'rustc') : join(rustupHome, sub, n)));
  }
  for (let dir = options.cwd; ; dir = dirname(dir)) {
    for (const f of ['rust-toolchain', 'rust-toolchain.toml']) {
      const bits = statBits(join(dir, f));
      if (bits !== '-') parts.push(join(dir, f), bits);
    }
    if (dirname(dir) === dir) break;
  }
  return parts.join('\n');
}
