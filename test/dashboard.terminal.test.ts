// The real binary (the bundle, dist/bundle/start.cjs dashboard): a static table when piped,
// JSON with --json, and — end to end — the interactive dashboard in a real
// terminal (tmux, 80x24): read the screen, move, open a project, quit.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDashboardStore, type DashboardStore } from './dashboard.store.js';
import { velo } from './support/runVelo.js';
import { veloBin } from './support/paths.js';
import { tempDirs } from './support/tmp.js';
import { formatBytes } from '../src/ui/format.js';

const tmp = tempDirs('velo-dash-term-');
let fx: DashboardStore;

beforeAll(async () => {
  fx = await makeDashboardStore(tmp());
});

describe('velo dashboard without a terminal', () => {
  it('prints the same figures as a static table when piped', () => {
    const r = velo(['dashboard'], { VELO_HOME: fx.home });
    expect(r.code, r.stderr).toBe(0);
    for (const section of ['Projects', 'By ecosystem', 'Most shared packages', 'gc']) expect(r.stdout).toContain(`\n${section}\n`);
    expect(r.stdout).toMatch(/objects\s+\d+ \([\d.]+ KB on disk\)/);
    const line = (p: string): string => r.stdout.split('\n').find((l) => l.includes(`${p} `) || l.endsWith(p))!;
    expect(line(fx.projects.two)).toContain(formatBytes(fx.sizes.c));
    expect(r.stdout).toMatch(/velo-dash-a@1\.0\.0\s+2\s/);
    expect(r.stdout).not.toContain('\x1b['); // no escape sequences in a pipe
  });

  it('prints them as JSON with --json', () => {
    const r = velo(['dashboard', '--json'], { VELO_HOME: fx.home });
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as {
      store: { objects: number; physicalBytes: number; dedupRatio: number };
      projects: { path: string; uniqueBytes: number; sharedBytes: number; ecosystems: string[] }[];
      mostShared: { name: string; projects: number }[];
      ecosystems: { ecosystem: string }[];
      gc: { objectBytes: number };
    };
    expect(j.projects.map((p) => p.path).sort()).toEqual([fx.projects.one, fx.projects.three, fx.projects.two].sort());
    const two = j.projects.find((p) => p.path === fx.projects.two)!;
    expect(two).toMatchObject({ uniqueBytes: fx.sizes.c, sharedBytes: fx.sizes.a + fx.sizes.b, ecosystems: ['npm'] });
    expect(j.mostShared[0]).toMatchObject({ name: 'velo-dash-a@1.0.0', projects: 2 });
    expect(j.ecosystems.map((e) => e.ecosystem).sort()).toEqual(['npm', 'tree']);
    expect(typeof j.gc.objectBytes).toBe('number');
  });

  it('has --help', () => {
    const r = velo(['dashboard', '--help'], { VELO_HOME: fx.home });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: velo dashboard');
  });
});

describe('velo dashboard in a terminal (tmux)', () => {
  // a private tmux server whose socket lives in a temp dir removed after the tests
  let socket = '';
  const tmux = (...args: string[]): string => execFileSync('tmux', ['-S', socket, ...args], { encoding: 'utf8' });
  const screen = (): string => tmux('capture-pane', '-p', '-t', 'dash');
  afterAll(() => {
    if (socket) spawnSync('tmux', ['-S', socket, 'kill-server']);
  });

  async function screenWhere(pred: (s: string) => boolean, what: string): Promise<string> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const s = screen();
      if (pred(s)) return s;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; screen:\n${s}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('draws in 80x24, moves, opens a project, and quits on q', async () => {
    const dir = tmp();
    socket = join(dir, 'tmux.sock');
    const timing = join(dir, 'timing.json');
    const done = join(dir, 'exit-code');
    // a terminal user's environment: no CI (velo and Ink stay quiet in CI)
    const env = Object.entries({ VELO_HOME: fx.home, VELO_DASHBOARD_TIMING: timing, PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', TERM: 'xterm-256color' })
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(' ');
    const command = `env -i ${env} ${JSON.stringify(process.execPath)} ${JSON.stringify(veloBin())} dashboard; echo $? > ${JSON.stringify(done)}; sleep 60`;
    tmux('new-session', '-d', '-x', '80', '-y', '24', '-s', 'dash', command);

    const first = await screenWhere((s) => s.includes('/one') && !s.includes('computing unique/shared'), 'the dashboard with its figures');
    const lines = first.split('\n');
    expect(lines[0]).toContain('velo dashboard');
    expect(lines[1]).toMatch(/objects \d+ · disk [\d.]+ KB · logical/);
    expect(first).toContain('Projects  Ecosystems  Shared packages  GC');
    expect(lines.find((l) => l.includes('/two '))).toContain(formatBytes(fx.sizes.c));
    expect(lines.find((l) => l.startsWith('▸'))).toContain('/one');

    tmux('send-keys', '-t', 'dash', 'Down');
    await screenWhere((s) => s.split('\n').find((l) => l.startsWith('▸'))?.includes('/three') === true, 'the selection to move');
    tmux('send-keys', '-t', 'dash', 'Enter');
    const detail = await screenWhere((s) => s.includes('esc back'), 'the project detail');
    expect(detail).toContain(`unique ${formatBytes(fx.sizes.three)}`);
    tmux('send-keys', '-t', 'dash', 'Escape');
    await screenWhere((s) => s.includes('enter detail'), 'back to the list');
    tmux('send-keys', '-t', 'dash', 'Tab');
    await screenWhere((s) => s.includes('STORED'), 'the ecosystems panel');

    tmux('send-keys', '-t', 'dash', 'q');
    const deadline = Date.now() + 10_000;
    // the shell creates the file before `echo` writes the code into it: wait for the code itself
    const exitCode = (): string => (existsSync(done) ? readFileSync(done, 'utf8').trim() : '');
    while (exitCode() === '' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(readFileSync(done, 'utf8').trim()).toBe('0');
    // the alternate screen is gone: the terminal shows what it showed before
    expect(screen()).not.toContain('velo dashboard');
    const t = JSON.parse(readFileSync(timing, 'utf8')) as { painted: number; inkFirstFrame: number };
    process.stdout.write(`dashboard in tmux: figures painted ${t.painted} ms, Ink's first frame ${t.inkFirstFrame} ms after process start\n`);
    expect(t.painted).toBeGreaterThan(0);
    expect(t.inkFirstFrame).toBeGreaterThanOrEqual(t.painted);
  });
});
