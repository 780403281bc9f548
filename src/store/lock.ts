/**
 * Leases in the index keep gc from racing an install: an install holds an
 * "install" lease for its whole run, gc holds the only "gc" lease and starts
 * only when no install lease is live. Leases of dead processes are dropped,
 * so a killed install never blocks the store. Taking a lease is a SQLite
 * write transaction, so two processes can never both think they won.
 */
import { VeloError } from '../errors.js';
import { writeTransaction } from './indexDb.js';
import type { Store } from './store.js';

export type LeaseKind = 'install' | 'gc';

export interface Lease {
  id: number;
  kind: LeaseKind;
  release(): void;
}

export function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

interface LeaseRow {
  id: number;
  pid: number;
  kind: string;
}

/** Try once; returns the lease or the holders that are in the way. */
function tryAcquire(store: Store, kind: LeaseKind): Lease | LeaseRow[] {
  return writeTransaction(store.index, () => {
    const rows = store.index.prepare('SELECT id, pid, kind FROM leases').all() as unknown as LeaseRow[];
    const del = store.index.prepare('DELETE FROM leases WHERE id = ?');
    const live: LeaseRow[] = [];
    for (const row of rows) {
      if (processAlive(Number(row.pid))) live.push(row);
      else del.run(row.id);
    }
    const blockers = kind === 'gc' ? live : live.filter((r) => r.kind === 'gc');
    if (blockers.length > 0) return blockers;
    const info = store.index.prepare('INSERT INTO leases(pid, kind, started) VALUES(?, ?, ?)').run(process.pid, kind, Date.now());
    const id = Number(info.lastInsertRowid);
    let released = false;
    return {
      id,
      kind,
      release() {
        if (released) return;
        released = true;
        store.index.prepare('DELETE FROM leases WHERE id = ?').run(id);
      },
    };
  });
}

export function acquireLease(store: Store, kind: LeaseKind, options: { waitMs?: number } = {}): Lease {
  const deadline = Date.now() + (options.waitMs ?? (kind === 'install' ? 120_000 : 0));
  for (;;) {
    const got = tryAcquire(store, kind);
    if (!Array.isArray(got)) return got;
    if (Date.now() >= deadline) {
      const who = got.map((r) => `${r.kind} (pid ${r.pid})`).join(', ');
      throw new VeloError('LOCKED', kind === 'gc' ? `gc cannot run while the store is in use by ${who}` : `the store is busy: ${who}`, {
        hint: kind === 'gc' ? 'run velo gc again when the install has finished' : 'wait for gc to finish',
      });
    }
    sleepSync(100);
  }
}

/** Run fn while holding a lease. */
export async function withLease<T>(store: Store, kind: LeaseKind, fn: () => Promise<T> | T, options?: { waitMs?: number }): Promise<T> {
  const lease = acquireLease(store, kind, options);
  try {
    return await fn();
  } finally {
    lease.release();
  }
}
