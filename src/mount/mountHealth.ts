/**
 * Is a recorded mount still being served? A mount is healthy when its
 * server process is alive (and is that server), its FUSE view is mounted
 * and answers, and — with the overlay method — its overlay is the mount on
 * top at the destination. Anything else is stale and gets repaired.
 */
import { statfsSync } from 'node:fs';
import { errnoCode } from '../errors.js';
import { livePid } from './mountProcess.js';
import type { MountRecord } from './mountRecords.js';
import { isOverlayOn, isVeloFuse, readMountTable, topMountAt, type MountEntry } from './mountTable.js';

export interface MountHealth {
  state: 'mounted' | 'stale';
  /** why it is stale, in words */
  reason: string | undefined;
  /** the live server's pid */
  pid: number | undefined;
}

/**
 * The error a FUSE view answers with, e.g. "Transport endpoint is not
 * connected" (ENOTCONN) when its server died. statfs, because the kernel
 * caches attributes, entries and directory listings of the view for a day,
 * so stat may still succeed on a dead connection; statfs is always asked.
 */
function statProblem(path: string): string | undefined {
  try {
    statfsSync(path);
    return undefined;
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOTCONN') return 'Transport endpoint is not connected (ENOTCONN)';
    if (code === 'ECONNABORTED') return 'the connection was aborted (ECONNABORTED)';
    return `${code ?? 'error'}: ${(err as Error).message}`;
  }
}

export function checkMount(record: MountRecord, table: MountEntry[] = readMountTable()): MountHealth {
  const pid = livePid(record);
  const fuseMounted = isVeloFuse(topMountAt(record.fuseAt, table));
  if (pid === undefined) {
    if (!fuseMounted) return { state: 'stale', reason: 'not mounted: its server is gone (killed, crashed, or the machine restarted)', pid };
    const problem = statProblem(record.fuseAt);
    return { state: 'stale', reason: `its server process is gone${problem ? `; ${record.fuseAt}: ${problem}` : ''}`, pid };
  }
  if (!fuseMounted) return { state: 'stale', reason: `the FUSE view at ${record.fuseAt} was unmounted from outside`, pid };
  if (record.method === 'overlay' && !isOverlayOn(topMountAt(record.dest, table), record.fuseAt)) {
    return { state: 'stale', reason: `the overlay at ${record.dest} was unmounted or covered by another mount`, pid };
  }
  const problem = statProblem(record.fuseAt);
  if (problem) return { state: 'stale', reason: `${record.fuseAt}: ${problem}`, pid };
  return { state: 'mounted', reason: undefined, pid };
}
