/**
 * velo dashboard [--json] — what the store holds and saves, live on a
 * terminal (Ink), or the same figures as a static table when there is no
 * terminal (piped, CI) and as JSON with --json.
 *
 * The first frame's figures are read and painted (plain ANSI, the same
 * lines Ink will draw) before Ink is loaded, and Ink is loaded the fast way
 * (src/ui/loadInk.ts): the figures are on screen ~100 ms after the process
 * starts, whatever the store's size — nothing here walks objects/.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { flag, parse } from './args.js';
import { openStore } from './storeContext.js';
import { json, out, type Io } from './io.js';
import { enableCompileCache } from 'node:module';
import { cachedSharing, loadOverview, loadReport } from '../src/ui/dashboardModel.js';
import { dashboardLines, initialViewState, linesToAnsi } from '../src/ui/dashboardView.js';
import { compileCacheDir } from '../src/project/runEnv.js';
import { renderStaticReport } from '../src/ui/staticReport.js';
import { formatBytes, formatCount } from '../src/ui/format.js';
import type { DashboardTasks, TaskResult } from '../src/ui/Dashboard.js';

const ENTER_ALT_SCREEN = '\x1b[?1049h';
const EXIT_ALT_SCREEN = '\x1b[?1049l';
const HIDE_CURSOR = '\x1b[?25l';
const SHOW_CURSOR = '\x1b[?25h';

const USAGE = `Usage: velo dashboard [--json]

An interactive view of the store: totals (objects, bytes on disk, logical
bytes, dedup ratio, bytes saved), the registered projects (path,
ecosystems, packages, logical size, bytes unique to each and shared with
others, projection, last used), a breakdown by ecosystem, the most shared
packages, and what gc would reclaim. It refreshes every second while an
install runs elsewhere, every few seconds otherwise.

Keys: ←/→ or tab switch panels · ↑/↓ move · enter a project's detail (esc
back) · g gc (asks first) · v verify · r refresh · q quit.

Without a terminal (piped, or CI set) it prints the same figures as a
static table.

  --json   print the figures as JSON`;

interface ChildResult {
  code: number;
  stdout: string;
  stderr: string;
}

function runVelo(veloJs: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [veloJs, ...args], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

function parseJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/** gc and verify as `velo gc --json` / `velo verify --json` in a child process: the screen stays live while they work. */
export function childTasks(veloJs: string, env: NodeJS.ProcessEnv, cwd: string): DashboardTasks {
  const failed = (what: string, r: ChildResult): TaskResult => {
    const e = parseJson<{ error?: { message?: string } }>(r.stdout)?.error;
    return { ok: false, message: `${what}: ${e?.message ?? (r.stderr.trim().split('\n').pop() || `exit code ${r.code}`)}` };
  };
  return {
    async gc() {
      const r = await runVelo(veloJs, ['gc', '--json'], { ...env, CI: '1' }, cwd);
      const g = parseJson<{ objectsDeleted: number; objectBytes: number; treesDeleted: number; treeBytes: number; keysDeleted: number; projectsDropped: string[] }>(r.stdout);
      if (r.code !== 0 || !g || g.objectsDeleted === undefined) return failed('gc', r);
      return {
        ok: true,
        message:
          `gc: deleted ${formatCount(g.objectsDeleted)} objects (${formatBytes(g.objectBytes)}), ${formatCount(g.treesDeleted)} trees, ${formatCount(g.keysDeleted)} keys` +
          (g.projectsDropped.length ? `; unregistered ${g.projectsDropped.length} missing project dir(s)` : ''),
      };
    },
    async verify() {
      const r = await runVelo(veloJs, ['verify', '--json'], { ...env, CI: '1' }, cwd);
      const v = parseJson<{ objects: number; trees: number; problems: unknown[] }>(r.stdout);
      if (!v || v.objects === undefined) return failed('verify', r);
      return {
        ok: v.problems.length === 0,
        message:
          `verify: ${formatCount(v.objects)} objects and ${formatCount(v.trees)} trees, ` +
          (v.problems.length === 0 ? 'all sound' : `${v.problems.length} problem(s): run velo verify for the list, velo verify --repair to fix`),
      };
    },
  };
}

export async function run(argv: string[], io: Io): Promise<number> {
  const p = parse(argv, { json: { type: 'boolean' } }, USAGE);
  if (p.help) return out(io, USAGE), 0;
  const store = openStore(io);
  try {
    const stdin = process.stdin as NodeJS.ReadStream;
    if (flag(p, 'json')) {
      json(io, await loadReport(store));
      return 0;
    }
    if (!io.interactive || !stdin.isTTY) {
      out(io, renderStaticReport(await loadReport(store)));
      return 0;
    }
    const marks: Record<string, number> = { command: performance.now() };
    // velo's own modules (Ink, React) start faster from Node's compile cache, kept in the store
    enableCompileCache?.(compileCacheDir(store.home));
    const initial = loadOverview(store);
    marks.figures = performance.now();
    // paint the first frame with plain ANSI while Ink loads (it takes 150–300 ms to import)
    const stdout = io.stdout as NodeJS.WriteStream;
    const size = { columns: stdout.columns || 80, rows: stdout.rows || 24 };
    const cached = cachedSharing(store, initial);
    const first = dashboardLines({ ...initialViewState(store.home, initial, size), ...(cached ? { sharing: { status: 'ready' as const, stats: cached } } : {}) });
    stdout.write(`${ENTER_ALT_SCREEN}${HIDE_CURSOR}\x1b[H\x1b[2J${linesToAnsi(first)}`);
    if (stdin.isTTY) stdin.setRawMode(true); // keys typed now wait for Ink instead of echoing
    marks.painted = performance.now();
    let instance: { waitUntilExit: () => Promise<unknown> };
    let firstFrameMs: number | undefined;
    try {
      // React and its reconciler load their production builds unless NODE_ENV says otherwise
      const setEnv = process.env.NODE_ENV === undefined;
      if (setEnv) process.env.NODE_ENV = 'production';
      let ink, Dashboard, createElement;
      try {
        const { loadInk } = await import('../src/ui/loadInk.js');
        ink = await loadInk();
        // React is CommonJS: its functions are on the default export (a bundle gives no named ones)
        ({ createElement } = (await import('react')).default);
        ({ Dashboard } = await import('../src/ui/Dashboard.js'));
      } finally {
        if (setEnv) delete process.env.NODE_ENV;
      }
      marks.ink = performance.now();
      const veloJs = fileURLToPath(new URL('./velo.js', import.meta.url));
      instance = ink.render(createElement(Dashboard, { store, tasks: childTasks(veloJs, io.env, io.cwd), initial }), {
        stdout,
        alternateScreen: true,
        patchConsole: false,
        onRender: () => {
          firstFrameMs ??= performance.now();
        },
      });
    } catch (e) {
      stdout.write(`${SHOW_CURSOR}${EXIT_ALT_SCREEN}`);
      if (stdin.isTTY) stdin.setRawMode(false);
      throw e;
    }
    await instance.waitUntilExit();
    // when the screen was painted and when Ink took over, from process start (bench/ and the tests read this)
    const timing = io.env.VELO_DASHBOARD_TIMING;
    if (timing) {
      const ms = Object.fromEntries(Object.entries(marks).map(([k, v]) => [k, Math.round(v)]));
      writeFileSync(timing, JSON.stringify({ ...ms, inkFirstFrame: Math.round(firstFrameMs ?? -1), objects: initial.objects }) + '\n');
    }
    return 0;
  } finally {
    store.close();
  }
}
