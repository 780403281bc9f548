// Install the peer package managers a benchmark compares against (pnpm, bun)
// into <repo>/bench/work/tools from the npm registry, pinned, once; return
// their paths. A tools directory holding other versions is reinstalled.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The peers' newest versions when the benchmarks were last recorded (docs/BENCHMARKS.md). */
export const PEER_VERSIONS = { pnpm: '12.24.0', bun: '1.4.5' };

function installedVersion(dir, name) {
  try {
    return JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

export function peerTools(repo) {
  const dir = join(repo, 'bench', 'work', 'tools');
  const bin = join(dir, 'node_modules', '.bin');
  const stale = Object.entries(PEER_VERSIONS).some(([name, v]) => installedVersion(dir, name) !== v);
  if (stale || !existsSync(join(bin, 'pnpm')) || !existsSync(join(bin, 'bun'))) {
    mkdirSync(dir, { recursive: true });
    const specs = Object.entries(PEER_VERSIONS).map(([name, v]) => `${name}@${v}`);
    execFileSync('npm', ['install', '--prefix', dir, '--no-audit', '--no-fund', '--loglevel=error', ...specs], { stdio: 'inherit' });
  }
  return { pnpm: join(bin, 'pnpm'), bun: join(bin, 'bun'), versions: PEER_VERSIONS };
}
