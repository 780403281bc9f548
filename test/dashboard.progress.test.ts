// The progress line (src/ui/progress.ts): what it draws on a terminal, how
// often, and that it draws nothing in CI or into a pipe.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createProgress, npmInstallProgress, progressLine, progressWanted } from '../src/ui/progress.js';

/** A stream that records what is written, claiming to be a terminal of the given width. */
function terminal(columns = 100, isTTY = true): Writable & { isTTY: boolean; columns: number; text: () => string; writes: string[] } {
  const writes: string[] = [];
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      writes.push(chunk.toString());
      cb();
    },
  }) as Writable & { isTTY: boolean; columns: number; text: () => string; writes: string[] };
  w.isTTY = isTTY;
  w.columns = columns;
  w.writes = writes;
  w.text = () => writes.join('');
  return w;
}

/** The text of the last drawn line, without escapes and spinner. */
function lastLine(t: { writes: string[] }): string {
  const last = t.writes.filter((w) => w.length > 6).pop() ?? '';
  return last.replace(/\r\x1b\[2K/g, '').slice(2);
}

describe('progress', () => {
  it('draws what is being done, counts, bytes, rate and time on one line', () => {
    let now = 0;
    const t = terminal();
    const p = createProgress({ stderr: t, env: {} }, { now: () => now });
    expect(p.active).toBe(true);
    p.phase('fetching', '212 packages');
    expect(lastLine(t)).toBe('fetching (212 packages) · 0 ms');
    now = 2000;
    p.update({ done: 40, total: 212, bytes: 4_000_000, unit: 'packages' });
    expect(lastLine(t)).toBe('fetching (212 packages) · 40/212 packages · 4.00 MB · 2.00 MB/s · 2.0 s');
    expect(t.text()).toMatch(/\r\x1b\[2K[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] fetching/);
    p.done();
    expect(t.writes.at(-1)).toBe('\r\x1b[2K'); // erased for the summary line
  });

  it('redraws at most every 80 ms however often it is told, and keeps the clock moving on its own', async () => {
    const t = terminal();
    const p = createProgress({ stderr: t, env: {} });
    p.phase('ingesting');
    for (let i = 0; i < 10_000; i++) p.update({ done: i, unit: 'files' });
    expect(t.writes.length).toBeLessThanOrEqual(2);
    await new Promise((r) => setTimeout(r, 400));
    const drawn = t.writes.length;
    expect(drawn).toBeGreaterThanOrEqual(3); // the timer drew the last count
    expect(drawn).toBeLessThan(10);
    expect(lastLine(t)).toMatch(/^ingesting · 9999 files · \d+ ms$/);
    p.done();
    await new Promise((r) => setTimeout(r, 200));
    expect(t.writes.length).toBe(drawn + 1); // nothing after done()
  });

  it('fits the terminal width', () => {
    const t = terminal(30);
    const p = createProgress({ stderr: t, env: {} }, { now: () => 0 });
    p.phase('linking node_modules', 'a very long detail that does not fit');
    expect([...lastLine(t)].length).toBeLessThanOrEqual(28);
    expect(lastLine(t).endsWith('…')).toBe(true);
    p.done();
  });

  it('draws nothing in CI, on a dumb terminal, into a pipe, or when the command is not interactive', () => {
    for (const [env, tty, interactive] of [
      [{ CI: '1' }, true, undefined],
      [{ CI: 'true' }, true, undefined],
      [{ TERM: 'dumb' }, true, undefined],
      [{}, false, undefined],
      [{}, true, false],
    ] as const) {
      const t = terminal(80, tty);
      const target = { stderr: t, env, ...(interactive === undefined ? {} : { interactive }) };
      expect(progressWanted(target)).toBe(false);
      const p = createProgress(target);
      expect(p.active).toBe(false);
      p.phase('fetching');
      p.update({ done: 1, total: 2, bytes: 10 });
      p.done();
      expect(t.writes).toEqual([]);
    }
    expect(progressWanted({ stderr: terminal(), env: { CI: 'false' } })).toBe(true);
  });

  it('maps npm install phases and fetch counts', () => {
    let now = 0;
    const t = terminal();
    const p = createProgress({ stderr: t, env: {} }, { now: () => now, intervalMs: 0 });
    const cb = npmInstallProgress(p);
    cb.phase('plan');
    expect(lastLine(t)).toBe('planning from the lockfile · 0 ms');
    now = 1000;
    cb.phase('fetch', '3 packages');
    expect(lastLine(t)).toBe('fetching · 0/3 packages · 1.0 s');
    cb.fetched(1, 3, 1500);
    expect(lastLine(t)).toBe('fetching · 1/3 packages · 1.50 KB · 1.0 s');
    cb.phase('link');
    expect(lastLine(t)).toBe('linking node_modules · 1.0 s');
    now = 1100;
    cb.phase('done');
    expect(lastLine(t)).toContain('linking');
    p.done();
  });

  it('formats a line without a total or bytes', () => {
    expect(progressLine({ phase: 'verifying', update: { done: 12, unit: 'objects' }, elapsedMs: 61_000, phaseMs: 61_000 })).toBe('verifying · 12 objects · 1m01s');
  });
});
