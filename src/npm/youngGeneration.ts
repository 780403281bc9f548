/**
 * Planning an install (npm's Arborist loading a 1207-package lockfile) is a
 * burst of short-lived allocations that makes V8 double the main thread's
 * young generation up to 64 MB, and V8 keeps it committed long after: all
 * through the fetch, when the tarball worker threads are at their peak
 * (~50 MB of peak RSS for nothing; 2.7 MB of it live). Holding its growth
 * factor at 1 while planning keeps it at its starting size for the same
 * planning CPU; it grows again as usual afterwards (linking wants it).
 * A growth factor the user set (NODE_OPTIONS, node flags) is left alone.
 */
import { setFlagsFromString } from 'node:v8';

/** V8's default --semi-space-growth-factor */
const DEFAULT_GROWTH = 2;

function userSetIt(): boolean {
  const flags = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
  return /semi[-_]space/.test(flags);
}

export async function withYoungGenerationHeld<T>(work: () => Promise<T>): Promise<T> {
  if (userSetIt()) return work();
  setFlagsFromString('--semi-space-growth-factor=1');
  try {
    return await work();
  } finally {
    setFlagsFromString(`--semi-space-growth-factor=${DEFAULT_GROWTH}`);
  }
}
