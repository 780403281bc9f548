/**
 * Repairing mounts whose server died (kill -9, a crash: "Transport endpoint
 * is not connected"), whose overlay or view was unmounted from outside, or
 * that a reboot took away: what is left is detached lazily and the
 * recorded tree mounted again over the same upper layer, so what was
 * written through the mount survives.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { unregisterProject } from '../store/keys.js';
import type { Store } from '../store/store.js';
import { hasTree } from '../store/trees.js';
import { bringUp } from './mountAttach.js';
import { checkMount } from './mountHealth.js';
import { detachMount, detachTop } from './mountKernel.js';
import { livePid, stopServer } from './mountProcess.js';
import { listRecords, removeMountDir, withMountLock, type MountRecord } from './mountRecords.js';
import { readMountTable } from './mountTable.js';

export interface RepairReport {
  dest: string;
  id: string;
  tree: string;
  /** what was wrong */
  reason: string;
  /** remounted from the recorded tree (same upper layer); dropped: the tree is gone from the store; failed: see error */
  action: 'remounted' | 'dropped' | 'failed';
  pid: number | undefined;
  error: string | undefined;
}

/**
 * Directories of mounts that lost their record: a retired server that was
 * killed before it finished deleting. Anything still mounted in one is
 * detached first; a live server's directory is left to it.
 */
function sweepOrphans(home: string): void {
  const root = join(home, 'mounts');
  let names: string[];
  try {
    names = readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch {
    return;
  }
  const table = readMountTable();
  for (const name of names) {
    const dir = join(root, name);
    if (name.startsWith('.') || existsSync(join(dir, 'mount.json'))) continue;
    if (livePid({ home, id: name } as MountRecord) !== undefined) continue;
    for (const sub of ['merged', 'parked', 'lower']) {
      const at = join(dir, sub);
      for (let i = 0; i < 8 && table.some((m) => m.mountPoint === at); i++) {
        if (!detachTop(at, sub === 'lower').ok) break;
        table.splice(table.findIndex((m) => m.mountPoint === at), 1);
      }
    }
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      /* still busy: next time */
    }
  }
}

export async function repairLocked(store: Store, dest: string | undefined): Promise<RepairReport[]> {
  sweepOrphans(store.home);
  const reports: RepairReport[] = [];
  const table = readMountTable();
  for (const record of listRecords(store.home)) {
    if (dest !== undefined && record.dest !== dest) continue;
    const health = checkMount(record, table);
    if (health.state === 'mounted') continue;
    const report: RepairReport = { dest: record.dest, id: record.id, tree: record.tree, reason: health.reason ?? 'stale', action: 'failed', pid: undefined, error: undefined };
    reports.push(report);
    if (health.pid !== undefined) stopServer(health.pid);
    detachMount(record.dest, record.fuseAt, record.method);
    const gone = !hasTree(store, record.tree) ? `tree ${record.tree} is no longer in the store` : !existsSync(record.dest) ? `${record.dest} no longer exists` : undefined;
    if (gone) {
      removeMountDir(record);
      unregisterProject(store, record.dest, record.ecosystem);
      report.action = 'dropped';
      report.error = gone;
      continue;
    }
    try {
      report.pid = await bringUp(record);
      report.action = 'remounted';
    } catch (err) {
      report.error = (err as Error).message;
    }
  }
  return reports;
}

/**
 * Find mounts whose server died (or whose mounts were taken down from
 * outside), detach what is left lazily, and mount the recorded tree again
 * over the same upper layer. With dest, only the mounts at dest.
 */
export async function repairStaleMounts(store: Store, dest?: string): Promise<RepairReport[]> {
  const abs = dest === undefined ? undefined : resolve(dest);
  if (listRecords(store.home).every((r) => abs !== undefined && r.dest !== abs)) return [];
  return withMountLock(store.home, () => repairLocked(store, abs));
}
