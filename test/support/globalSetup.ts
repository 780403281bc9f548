/**
 * Once per test run: compile the TypeScript, bundle it as it ships (tests
 * that spawn the real `velo` binary run dist/bundle/start.cjs; a few run tsc's
 * dist/cli/velo.js) and build the native addon, velo-mountd and velo-launch when one is missing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './paths.js';

export default function setup(): void {
  const root = repoRoot();
  // tsc emits even when it finds type errors; those fail `npm run typecheck`
  // (run by .ci/run), not every test that needs dist/
  try {
    execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')], {
      stdio: 'inherit',
    });
  } catch {
    process.stderr.write('globalSetup: tsc reported errors (see above); dist/ was still emitted\n');
  }
  execFileSync(process.execPath, [join(root, 'scripts', 'bundle.mjs')], { stdio: 'inherit' });
  const addon = join(root, 'native', 'build', 'velo_native.node');
  const mountd = join(root, 'native', 'build', 'velo-mountd');
  const launcher = join(root, 'native', 'build', 'velo-launch');
  if ((!existsSync(addon) || !existsSync(mountd) || !existsSync(launcher)) && existsSync(join(root, 'native', 'build.mjs'))) {
    execFileSync(process.execPath, [join(root, 'native', 'build.mjs')], { stdio: 'inherit' });
  }
}
