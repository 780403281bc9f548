/**
 * Counters kept up to date by every writer, so `velo status` and the
 * dashboard never walk the store. `velo verify` recomputes them.
 */
import type { Store } from './store.js';

export type CounterName = 'objects' | 'object_bytes' | 'trees' | 'tree_bytes';

export type CounterDelta = Partial<Record<CounterName, number>>;

export function addCounters(store: Store, delta: CounterDelta): void {
  const entries = Object.entries(delta).filter(([, v]) => v !== 0 && v !== undefined);
  if (entries.length === 0) return;
  const stmt = store.index.prepare(
    'INSERT INTO counters(name, value) VALUES(?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value',
  );
  for (const [name, value] of entries) stmt.run(name, value as number);
}

export function setCounters(store: Store, values: Record<CounterName, number>): void {
  const stmt = store.index.prepare(
    'INSERT INTO counters(name, value) VALUES(?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value',
  );
  for (const [name, value] of Object.entries(values)) stmt.run(name, value);
}

export function readCounters(store: Store): Record<CounterName, number> {
  const out: Record<CounterName, number> = { objects: 0, object_bytes: 0, trees: 0, tree_bytes: 0 };
  for (const row of store.index.prepare('SELECT name, value FROM counters').all() as { name: string; value: number }[]) {
    if (row.name in out) out[row.name as CounterName] = Number(row.value);
  }
  return out;
}
