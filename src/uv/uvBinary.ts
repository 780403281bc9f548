/**
 * Which uv velo runs: $VELO_UV, else the pinned copy that
 * scripts/install-uv.sh puts in <velo>/.tools/uv/bin/uv, else `uv` on PATH.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VeloError } from '../errors.js';

/** The directory holding velo's package.json (works from src/ and dist/src/). */
export function veloPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'src'))) return dir;
    dir = dirname(dir);
  }
  return dirname(dirname(dirname(fileURLToPath(import.meta.url))));
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function findUv(env: NodeJS.ProcessEnv = process.env): string {
  if (env.VELO_UV) {
    if (!executable(env.VELO_UV)) throw new VeloError('NOT_FOUND', `VELO_UV=${env.VELO_UV} is not an executable file`);
    return env.VELO_UV;
  }
  const pinned = join(veloPackageRoot(), '.tools', 'uv', 'bin', 'uv');
  if (executable(pinned)) return pinned;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'uv');
    if (executable(candidate)) return candidate;
  }
  throw new VeloError('NOT_FOUND', 'uv was not found (looked at $VELO_UV, <velo>/.tools/uv/bin/uv and PATH)', {
    hint: 'run scripts/install-uv.sh, or set VELO_UV to a uv binary',
  });
}
