// The dashboard rendered with ink-testing-library over a real store made by
// the test (ingest + graft + materialize + registerProject): the figures it
// shows, the keys, and how it fits an 80x24 and a narrow terminal.
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { render, cleanup } from 'ink-testing-library';
import { Dashboard, type DashboardTasks } from '../src/ui/Dashboard.js';
import { Store } from '../src/store/store.js';
import { collectGarbage } from '../src/store/gc.js';
import { verifyStore } from '../src/store/verify.js';
import { formatBytes } from '../src/ui/format.js';
import { makeDashboardStore, type DashboardStore } from './dashboard.store.js';
import { tempDirs } from './support/tmp.js';
import { repoRoot } from './support/paths.js';

const tmp = tempDirs('velo-dash-');
let fx: DashboardStore;
const stores: Store[] = [];

beforeAll(async () => {
  fx = await makeDashboardStore(tmp());
});

afterEach(() => {
  cleanup();
  for (const s of stores.splice(0)) s.close();
});

function open(home = fx.home): Store {
  const s = Store.open(home);
  stores.push(s);
  return s;
}

/** In-process gc/verify, recording what ran. */
function tasks(store: Store, ran: string[] = []): DashboardTasks {
  return {
    gc: async () => {
      ran.push('gc');
      const r = collectGarbage(store);
      return { ok: true, message: `gc: deleted ${r.objectsDeleted} objects (${formatBytes(r.objectBytes)})` };
    },
    verify: async () => {
      ran.push('verify');
      const r = await verifyStore(store);
      return { ok: r.problems.length === 0, message: `verify: ${r.objects} objects, ${r.problems.length} problems` };
    },
  };
}

async function until(pred: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await tick(20);
  }
}

const tick = (ms = 30): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Wait until the last frame satisfies pred (the dashboard fills in figures after its first frame). */
async function frameWhere(lastFrame: () => string | undefined, pred: (f: string) => boolean, what: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const f = lastFrame() ?? '';
    if (pred(f)) return f;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last frame:\n${f}`);
    await tick(20);
  }
}

const idle = { activeMs: 60_000, idleMs: 60_000 };

describe('velo dashboard (Ink)', () => {
  it('shows the store totals and every project with its unique and shared bytes in 80x24', async () => {
    const store = open();
    const { lastFrame } = render(<Dashboard store={store} tasks={tasks(store)} columns={80} rows={24} refresh={idle} />);
    const f = await frameWhere(lastFrame, (x) => !x.includes('computing unique/shared'), 'the sharing stats');
    const lines = f.split('\n');
    expect(lines.length).toBeLessThanOrEqual(23);
    for (const l of lines) expect([...l].length).toBeLessThanOrEqual(80);
    expect(lines[0]).toContain('velo dashboard');
    expect(f).toMatch(/objects \d+ · disk [\d.]+ KB · logical [\d.]+ KB · dedup [\d.]+x · saved/);
    const row = (name: string): string => lines.find((l) => l.includes(`/${name} `))!;
    // one: a and b, both shared with two; two: c is its own; three: all its own
    expect(row('one')).toContain(`${formatBytes(0)}`);
    expect(row('one')).toContain(formatBytes(fx.sizes.a + fx.sizes.b));
    expect(row('two')).toContain(formatBytes(fx.sizes.c));
    expect(row('three')).toContain(formatBytes(fx.sizes.three));
    expect(row('one')).toMatch(/npm\s+2 /);
    expect(row('two')).toMatch(/npm\s+3 /);
  });

  it('moves with the arrows, switches panels with tab, opens a project with enter and goes back with esc', async () => {
    const store = open();
    const { lastFrame, stdin } = render(<Dashboard store={store} tasks={tasks(store)} columns={80} rows={24} refresh={idle} />);
    await frameWhere(lastFrame, (x) => x.includes('▸ ') && x.includes('/one'), 'first row selected');
    expect(lastFrame()!.split('\n').find((l) => l.startsWith('▸'))).toContain('/one');
    // rows are sorted by path: one, three, two
    stdin.write('\x1b[B'); // down
    await frameWhere(lastFrame, (x) => x.split('\n').find((l) => l.startsWith('▸'))?.includes('/three') === true, 'second row selected');
    stdin.write('\x1b[B');
    await frameWhere(lastFrame, (x) => x.split('\n').find((l) => l.startsWith('▸'))?.includes('/two') === true, 'third row selected');
    stdin.write('\x1b[B'); // stays on the last row
    await tick(60);
    expect(lastFrame()!.split('\n').find((l) => l.startsWith('▸'))).toContain('/two');
    stdin.write('\r'); // enter
    const detail = await frameWhere(lastFrame, (x) => x.includes('esc back'), 'the detail view');
    expect(detail).toContain('node_modules');
    expect(detail).toMatch(/npm\s+[0-9a-f]{12}\s+copy/);
    expect(detail).toContain(`unique ${formatBytes(fx.sizes.c)}`);
    stdin.write('\x1b'); // esc
    await frameWhere(lastFrame, (x) => x.includes('enter detail'), 'back to the list');
    stdin.write('\t');
    const eco = await frameWhere(lastFrame, (x) => x.includes('STORED'), 'the ecosystems panel');
    expect(eco).toMatch(/npm\s+2\s+5\s/); // two npm projects with 2 + 3 packages
    expect(eco).toMatch(/tree\s+1/);
    stdin.write('\t');
    const shared = await frameWhere(lastFrame, (x) => x.includes('PACKAGE'), 'the shared packages panel');
    const sharedRows = shared.split('\n').filter((l) => l.includes('@1.0.0'));
    expect(sharedRows[0]).toContain('velo-dash-a@1.0.0');
    expect(sharedRows[0]).toMatch(/velo-dash-a@1\.0\.0\s+2\s/);
    expect(sharedRows[1]).toContain('velo-dash-b@1.0.0');
    expect(sharedRows[2]).toMatch(/velo-dash-c@1\.0\.0\s+1\s/);
    stdin.write('\x1b[Z'); // shift-tab: back to ecosystems
    await frameWhere(lastFrame, (x) => x.includes('STORED'), 'shift-tab goes back');
  });

  it('estimates what gc would reclaim as gc --dry-run counts it, asks before gc, and runs it on y', async () => {
    const home = join(tmp(), 'copy');
    const copy = await makeDashboardStore(home);
    const store = open(copy.home);
    // the estimate is counters minus what live trees use: start from exact counters (verify recomputes them)
    await verifyStore(store);
    const dry = collectGarbage(store, { dryRun: true });
    expect(dry.objectsDeleted).toBe(1);
    const ran: string[] = [];
    const { lastFrame, stdin } = render(<Dashboard store={store} tasks={tasks(store, ran)} columns={80} rows={24} refresh={idle} />);
    stdin.write('\x1b[D'); // left: wraps round to the gc panel
    const gc = await frameWhere(lastFrame, (x) => x.includes('gc would reclaim about'), 'the gc estimate');
    expect(gc).toContain(`gc would reclaim about ${formatBytes(dry.objectBytes + dry.treeBytes)}`);
    expect(gc).toContain(`${dry.objectsDeleted} objects (${formatBytes(dry.objectBytes)}), ${dry.treesDeleted} trees`);
    stdin.write('g');
    await frameWhere(lastFrame, (x) => x.includes('y = yes, n = no'), 'the confirmation');
    stdin.write('n');
    await frameWhere(lastFrame, (x) => !x.includes('y = yes'), 'the confirmation to go away');
    expect(ran).toEqual([]);
    stdin.write('g');
    await frameWhere(lastFrame, (x) => x.includes('y = yes, n = no'), 'the confirmation again');
    stdin.write('y');
    await frameWhere(lastFrame, (x) => x.includes('gc: deleted 1 objects'), 'the gc result');
    expect(ran).toEqual(['gc']);
    expect(collectGarbage(store, { dryRun: true }).objectsDeleted).toBe(0);
    // the estimate follows: nothing left to reclaim
    stdin.write('r');
    await frameWhere(lastFrame, (x) => x.includes('gc would reclaim about 0 B'), 'the new estimate');
  });

  it('runs verify on v and shows its result', async () => {
    const store = open();
    const ran: string[] = [];
    const { lastFrame, stdin } = render(<Dashboard store={store} tasks={tasks(store, ran)} columns={80} rows={24} refresh={idle} />);
    await frameWhere(lastFrame, (x) => x.includes('/one'), 'the first frame');
    stdin.write('v');
    const f = await frameWhere(lastFrame, (x) => x.includes('verify: '), 'the verify result');
    expect(f).toMatch(/verify: \d+ objects, 0 problems/);
    expect(ran).toEqual(['verify']);
  });

  it('refreshes every second while an install runs in another process: its project appears, its lease shows', async () => {
    const home = join(tmp(), 'live');
    const copy = await makeDashboardStore(home);
    const extra = join(home, 'src', 'three');
    // a real second process holding an install lease, as a running install does
    const holder = spawn(process.execPath, [join(repoRoot(), 'test', 'support', 'leaseHolder.mjs'), copy.home, extra], { stdio: ['pipe', 'pipe', 'inherit'] });
    let said = '';
    holder.stdout.on('data', (d: Buffer) => (said += d.toString()));
    try {
      await until(() => said.includes('ready'), 'the lease holder');
      const store = open(copy.home);
      // idle refresh far away: anything that shows up came from the install-time refresh
      const { lastFrame } = render(<Dashboard store={store} tasks={tasks(store)} columns={100} rows={30} refresh={{ activeMs: 100, idleMs: 60_000 }} />);
      await frameWhere(lastFrame, (x) => x.includes(`install running (pid ${holder.pid})`), 'the running install in the title');
      const dest = join(home, 'installed-meanwhile');
      holder.stdin.write(`register ${dest}\n`);
      await frameWhere(lastFrame, (x) => x.includes('/installed-meanwhile'), 'the project the install registered');
      await until(() => said.includes('released'), 'the lease to be released');
      await frameWhere(lastFrame, (x) => !x.includes('install running'), 'the finished install to leave the title');
    } finally {
      holder.kill();
    }
  });

  it('marks a project whose directory is gone, after r', async () => {
    const home = join(tmp(), 'gone');
    const copy = await makeDashboardStore(home);
    const store = open(copy.home);
    const { lastFrame, stdin } = render(<Dashboard store={store} tasks={tasks(store)} columns={100} rows={30} refresh={idle} />);
    await frameWhere(lastFrame, (x) => x.includes('/three '), 'the first frame');
    rmSync(copy.projects.three, { recursive: true, force: true });
    stdin.write('r');
    await frameWhere(lastFrame, (x) => x.includes('/three (gone)'), 'the removed project marked gone');
  });

  it('degrades in a narrow terminal: fewer columns, short labels, nothing wider than the screen', async () => {
    const store = open();
    const { lastFrame } = render(<Dashboard store={store} tasks={tasks(store)} columns={44} rows={14} refresh={idle} />);
    const f = await frameWhere(lastFrame, (x) => x.includes('/one'), 'the first frame');
    const lines = f.split('\n');
    expect(lines.length).toBeLessThanOrEqual(13);
    for (const l of lines) expect([...l].length).toBeLessThanOrEqual(44);
    expect(f).toContain('Proj');
    expect(f).not.toContain('Shared packages');
    expect(f).toContain('LOGICAL');
    expect(f).not.toContain('PROJ '); // the projection column went first
    expect(f).toContain('←→ ↑↓ ⏎ g v r q');
  });

  it('quits on q', async () => {
    const store = open();
    const { lastFrame, stdin, frames } = render(<Dashboard store={store} tasks={tasks(store)} columns={80} rows={24} refresh={{ activeMs: 20, idleMs: 20 }} />);
    await frameWhere(lastFrame, (x) => x.includes('/one'), 'the first frame');
    stdin.write('q');
    await tick(100);
    const n = frames.length;
    await tick(200); // refresh timers would draw again if it were still running
    expect(frames.length).toBe(n);
  });
});
