/**
 * The ingest worker pool never keeps a finished command alive: idle workers
 * (started early, or never given a job) do not hold the event loop. And it
 * starts no worker that has nothing to do.
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

  it('one job starts one worker, not the pool; jobs arriving while it is busy start more, up to the pool size', () => {
    const script = `
      const { ingestPool } = await import(${JSON.stringify(join(repo, 'dist', 'src', 'store', 'ingestPool.js'))});
      const pool = ingestPool(3);
      const job = () => pool.job({ job: 'remote-encode', items: [{ digest: 'none', size: 1, path: '/nonexistent/velo-test' }] });
      const before = pool.workers;
      const one = await job();
      const afterOne = pool.workers;
      const many = await Promise.all(Array.from({ length: 8 }, job));
      console.log(JSON.stringify({ before, afterOne, afterMany: pool.workers, bad: [one, ...many].map((r) => r.bad) }));
      pool.stopIfIdle();
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim()) as { before: number; afterOne: number; afterMany: number; bad: number[][] };
    expect(out).toEqual({ before: 0, afterOne: 1, afterMany: 3, bad: Array.from({ length: 9 }, () => [0]) });
  });
});
