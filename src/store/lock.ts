/**
 * Leases in the index keep gc from racing an install: an install holds an
 * "install" lease for its whole run, gc holds the only "gc" lease and starts
 * only when no install lease is live. Leases of dead processes are dropped,
 * so a killed install never blocks the store. Taking a lease is a SQLite
 * write transaction, so two processes can never both think they won.
 *
 * An install lease can also lock one project directory: a second velo
 * installing into the same directory waits for the first (as cargo waits
 * for its build directory lock), instead of both swapping trees into the
 * same place. Different projects never wait for each other.
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
  /** 'install', 'gc', or 'project' (another process holds the project lock) */
  kind: string;
}

export interface LeaseOptions {
  /** how long to wait for gc (install) or for installs (gc) to finish; a project lock is waited for as long as its holder lives */
  waitMs?: number;
  /** lock this project directory (absolute path) for the lease's length */
  project?: string;
  /** called once when the lease has to wait for another process */
  onWait?: (holder: { kind: string; pid: number }) => void;
}

/** Try once; returns the lease or the holders that are in the way. */
function tryAcquire(store: Store, kind: LeaseKind, project: string | undefined): Lease | LeaseRow[] {
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
    if (project !== undefined) {
      const holder = store.index.prepare('SELECT pid FROM project_locks WHERE path = ?').get(project) as { pid: number } | undefined;
      if (holder && holder.pid !== process.pid && processAlive(Number(holder.pid))) return [{ id: -1, pid: Number(holder.pid), kind: 'project' }];
    }
    const info = store.index.prepare('INSERT INTO leases(pid, kind, started) VALUES(?, ?, ?)').run(process.pid, kind, Date.now());
    const id = Number(info.lastInsertRowid);
    if (project !== undefined) store.index.prepare('INSERT OR REPLACE INTO project_locks(path, pid, lease) VALUES(?, ?, ?)').run(project, process.pid, id);
    let released = false;
    return {
      id,
      kind,
      release() {
        if (released) return;
        released = true;
        if (project !== undefined) store.index.prepare('DELETE FROM project_locks WHERE path = ? AND lease = ?').run(project, id);
        store.index.prepare('DELETE FROM leases WHERE id = ?').run(id);
      },
    };
  });
}

export function acquireLease(store: Store, kind: LeaseKind, options: LeaseOptions = {}): Lease {
  const deadline = Date.now() + (options.waitMs ?? (kind === 'install' ? 120_000 : 0));
  let told = false;
  for (;;) {
    const got = tryAcquire(store, kind, options.project);
    if (!Array.isArray(got)) return got;
    const onlyProject = got.every((r) => r.kind === 'project');
    if (!onlyProject && Date.now() >= deadline) {
      const who = got.map((r) => `${r.kind} (pid ${r.pid})`).join(', ');
      throw new VeloError('LOCKED', kind === 'gc' ? `gc cannot run while the store is in use by ${who}` : `the store is busy: ${who}`, {
        hint: kind === 'gc' ? 'run velo gc again when the install has finished' : 'wait for gc to finish',
      });
    }
    if (!told) {
      told = true;
      options.onWait?.({ kind: got[0]!.kind, pid: got[0]!.pid });
    }
    sleepSync(100);
  }
}

export async function withLease<T>(store: Store, kind: LeaseKind, fn: () => Promise<T> | T, options?: LeaseOptions): Promise<T> {
  const lease = acquireLease(store, kind, options);
  try {
    return await fn();
  } finally {
    lease.release();
  }
}
