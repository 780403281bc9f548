/**
 * The ingest worker pool never keeps a finished command alive: idle workers
 * (started early, or never given a job) do not hold the event loop.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const repo = join(import.meta.dirname, '..');

describe('ingest worker pool', () => {
  it('started workers that never get a job let the process exit at once, not after the idle stop (10 s)', () => {
    const script = `
      const { ingestPool } = await import(${JSON.stringify(join(repo, 'dist', 'src', 'store', 'ingestPool.js'))});
      const pool = ingestPool(3);
      pool.start();
      if (!pool.warm) throw new Error('no workers started');
      const t = performance.now();
      process.on('exit', () => console.log(JSON.stringify({ exitedAfterMs: Math.round(performance.now() - t) })));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    const { exitedAfterMs } = JSON.parse(r.stdout.trim()) as { exitedAfterMs: number };
    // the idle stop is 10 s; a process held by its idle workers exits only then
    expect(exitedAfterMs).toBeLessThan(5_000);
  });
});
