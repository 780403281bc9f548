/**
 * uv's lock on a virtual environment: an exclusive flock(2) on `<venv>/.lock`,
 * which every `uv pip` command that changes the environment takes (uv-fs
 * LockedFile; created empty when missing). velo takes the same lock while
 * it reads and writes the environment, so a concurrent `uv pip` waits for
 * velo and velo waits for it — never both writing at once.
 *
 * Waiting is bounded as uv bounds it: UV_LOCK_TIMEOUT seconds (default 300).
 * uv goes on without the lock after that; velo stops, having changed nothing.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { join } from 'node:path';
import { VeloError, fsError } from '../errors.js';
import { loadNative } from '../native.js';

/** uv's default wait for a lock (UV_LOCK_TIMEOUT, seconds). */
const DEFAULT_TIMEOUT_S = 300;
const POLL_MS = 50;

export interface VenvLock {
  /** the lock file */
  path: string;
  /** release the lock (idempotent) */
  release(): void;
  /** take it again after release(), waiting as lockVenv does */
  reacquire(): Promise<void>;
}

/** Can velo take uv's lock here? (It needs the native addon's flock.) */
export function canLockVenv(): boolean {
  return typeof loadNative()?.tryFlock === 'function';
}

export function lockTimeoutMs(env: NodeJS.ProcessEnv): number {
  const raw = env.UV_LOCK_TIMEOUT;
  const s = raw !== undefined && /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : DEFAULT_TIMEOUT_S;
  return s * 1000;
}

/**
 * Take uv's lock on `envDir`, waiting while another process holds it;
 * `onWait` is called once when it has to wait. Throws LOCKED after the
 * timeout. The caller releases it (closing the file releases it too, so a
 * killed velo never leaves it held).
 */
export async function lockVenv(envDir: string, env: NodeJS.ProcessEnv, onWait?: (path: string) => void): Promise<VenvLock> {
  const native = loadNative();
  if (typeof native?.tryFlock !== 'function') throw new VeloError('LOCKED', `velo cannot take uv's lock on ${envDir} without its native addon`);
  const tryFlock = native.tryFlock.bind(native);
  const path = join(envDir, '.lock');
  let fd: number | undefined;

  const acquire = async (): Promise<void> => {
    try {
      // no symlink is followed: the file is made inside the environment or not at all
      fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o644);
    } catch (err) {
      throw fsError(err, `cannot open uv's lock file ${path}`);
    }
    const deadline = Date.now() + lockTimeoutMs(env);
    let waited = false;
    for (;;) {
      if (tryFlock(fd)) return;
      if (Date.now() >= deadline) {
        closeSync(fd);
        fd = undefined;
        throw new VeloError('LOCKED', `timed out waiting for ${path}: another uv process is changing ${envDir}`, {
          hint: 'wait for it to finish and run the command again, or set UV_LOCK_TIMEOUT (seconds) to wait longer',
        });
      }
      if (!waited) onWait?.(path);
      waited = true;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  };
  const release = (): void => {
    if (fd === undefined) return;
    closeSync(fd);
    fd = undefined;
  };
  await acquire();
  return { path, release, reacquire: acquire };
}
