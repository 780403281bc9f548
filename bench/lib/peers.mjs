// Install the peer package managers a benchmark compares against (pnpm, bun)
// into <repo>/bench/work/tools from the npm registry, once; return their paths.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export function peerTools(repo) {
  const dir = join(repo, 'bench', 'work', 'tools');
  const bin = join(dir, 'node_modules', '.bin');
  if (!existsSync(join(bin, 'pnpm')) || !existsSync(join(bin, 'bun'))) {
    mkdirSync(dir, { recursive: true });
    execFileSync('npm', ['install', '--prefix', dir, '--no-audit', '--no-fund', '--loglevel=error', 'pnpm@10', 'bun@1'], { stdio: 'inherit' });
  }
  return { pnpm: join(bin, 'pnpm'), bun: join(bin, 'bun') };
}
