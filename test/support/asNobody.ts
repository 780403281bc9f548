/**
 * Running velo as an unprivileged user (nobody) from a test that runs as
 * root. The checkout (and the Node that setup put in it) may sit under a
 * directory only root can enter (mktemp -d is 0700), so nobody runs them
 * from a bind mount of the checkout inside the test's own base directory,
 * which must be 0755. Never delete base while the bind mount is up:
 * release() first.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { repoRoot, veloBin } from './paths.js';

export interface NobodyCheckout {
  uid: number;
  gid: number;
  /** the path nobody uses for a path in the checkout (others unchanged) */
  inCheckout(path: string): string;
  /** `node <velo.js>` as nobody can run them */
  veloCommand: [node: string, script: string];
  /** unmount the bind mount; throws if it is still mounted */
  release(): void;
}

export function nobodyIds(): { uid: number; gid: number } {
  return {
    uid: Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).trim()),
  };
}

/** Bind-mounts the checkout at <base>/velo for nobody. */
export function checkoutForNobody(base: string): NobodyCheckout {
  const codeDir = join(base, 'velo');
  mkdirSync(codeDir);
  execFileSync('mount', ['--bind', repoRoot(), codeDir]);
  const inCheckout = (path: string): string => (path.startsWith(repoRoot() + '/') ? join(codeDir, relative(repoRoot(), path)) : path);
  return {
    ...nobodyIds(),
    inCheckout,
    veloCommand: [inCheckout(process.execPath), inCheckout(veloBin())],
    release: () => {
      spawnSync('umount', [codeDir], { stdio: 'ignore' });
      if (readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${codeDir} `)) throw new Error(`${codeDir} is still mounted`);
    },
  };
}
