/**
 * A scratch directory with a store for the mount tests, and its teardown:
 * every mount velo made unmounted, whatever a failed test left mounted under
 * it detached, leftover servers killed, the directory removed.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unmountAll } from '../../src/mount/mount.js';
import { readMountTable } from '../../src/mount/mountTable.js';
import { Store } from '../../src/store/store.js';

/** A new directory under the system tmpdir with a store at <base>/home. */
export function openMountSandbox(prefix: string): { base: string; store: Store } {
  const base = mkdtempSync(join(tmpdir(), prefix));
  return { base, store: Store.open(join(base, 'home')) };
}

/** Detaches every mount under base, innermost first (FUSE views by fusermount3, overlays by umount). */
export function detachMountsUnder(base: string): void {
  for (const m of readMountTable().reverse()) {
    if (!m.mountPoint.startsWith(base)) continue;
    spawnSync('sh', ['-c', `fusermount3 -uz '${m.mountPoint}' 2>/dev/null || umount -l '${m.mountPoint}'`]);
  }
}

/** Kills the servers a failed test may have left: every <home>/mounts/<id>/server.json names one. */
export function killLeftoverServers(home: string): void {
  const dir = join(home, 'mounts');
  for (const id of existsSync(dir) ? readdirSync(dir) : []) {
    try {
      process.kill((JSON.parse(readFileSync(join(dir, id, 'server.json'), 'utf8')) as { pid: number }).pid, 'SIGKILL');
    } catch {
      /* none */
    }
  }
}

/** The teardown for openMountSandbox: safe to call when the setup failed half way. */
export async function removeMountSandbox(base: string | undefined, store: Store | undefined): Promise<void> {
  try {
    if (store) await unmountAll(store);
  } finally {
    if (base) {
      detachMountsUnder(base);
      killLeftoverServers(join(base, 'home'));
      store?.close();
      rmSync(base, { recursive: true, force: true });
    }
  }
}

/** Whether pid is a live process (a zombie is not). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}
