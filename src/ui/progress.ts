/**
 * Progress for long work (fetching, ingesting, linking, verifying, gc): one
 * line on a terminal, redrawn at most ~12 times a second, saying what is
 * being done, how far (done/total), how many bytes and how fast, and how
 * long it has taken. Quiet when it should be: CI set, TERM=dumb, or the
 * stream not a terminal — then nothing is drawn at all and the command
 * prints its own one-line summary as before.
 *
 * Plain ANSI, not Ink: Ink and React take 350–1000 ms to import on the
 * 2-core machine this was measured on (~400 ms of CPU; 140–200 ms even
 * with src/ui/loadInk.ts; docs/BENCHMARKS.md, "velo dashboard"), more than
 * a warm install takes in total; a progress line must not slow down the
 * work it reports on.
 */

export interface ProgressUpdate {
  done?: number;
  total?: number;
  /** bytes so far (fetched, ingested, hashed) */
  bytes?: number;
  /** what `done` counts: "packages", "files", "objects" */
  unit?: string;
}

export interface Progress {
  /** a new phase: what is being done, and a detail ("212 packages") */
  phase(name: string, detail?: string): void;
  update(u: ProgressUpdate): void;
  /** erase the line (the caller prints its summary after this) */
  done(): void;
  /** false when nothing is drawn (CI, piped, dumb terminal) */
  readonly active: boolean;
}

export interface ProgressTarget {
  stderr: NodeJS.WritableStream | NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
  /** set by cli/io.ts: stdout is a terminal and CI is not set */
  interactive?: boolean;
}

export interface ProgressOptions {
  /** milliseconds between redraws (default 80) */
  intervalMs?: number;
  /** draw even when the stream is not a terminal (tests) */
  force?: boolean;
  /** the clock (tests) */
  now?: () => number;
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export function inCi(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.CI) && env.CI !== 'false' && env.CI !== '0';
}

/** Should progress be drawn on this stream? */
export function progressWanted(target: ProgressTarget): boolean {
  const stream = target.stderr as NodeJS.WriteStream;
  if (inCi(target.env) || target.env.TERM === 'dumb') return false;
  if (target.interactive === false) return false;
  return Boolean(stream.isTTY);
}

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v.toFixed(0) : v.toFixed(Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2)} ${units[i]}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/** The progress line's text (without spinner/escapes), for a given state. */
export function progressLine(s: { phase: string; detail?: string | undefined; update: ProgressUpdate; elapsedMs: number; phaseMs: number }): string {
  const parts: string[] = [s.phase + (s.detail ? ` (${s.detail})` : '')];
  const u = s.update;
  if (u.done !== undefined) parts.push(`${u.done}${u.total !== undefined ? `/${u.total}` : ''}${u.unit ? ` ${u.unit}` : ''}`);
  if (u.bytes !== undefined && u.bytes > 0) {
    parts.push(formatBytes(u.bytes));
    if (s.phaseMs >= 500) parts.push(`${formatBytes((u.bytes / s.phaseMs) * 1000)}/s`);
  }
  parts.push(formatDuration(s.elapsedMs));
  return parts.join(' · ');
}

function clip(text: string, columns: number | undefined): string {
  const max = Math.max(10, (columns ?? 80) - 1);
  const chars = [...text];
  return chars.length <= max ? text : chars.slice(0, max - 1).join('') + '…';
}

const QUIET: Progress = { phase() {}, update() {}, done() {}, active: false };

/**
 * A progress line on target.stderr, or a progress that does nothing when it
 * should be quiet.
 */
export function createProgress(target: ProgressTarget, options: ProgressOptions = {}): Progress {
  if (!options.force && !progressWanted(target)) return QUIET;
  const stream = target.stderr as NodeJS.WriteStream;
  const now = options.now ?? (() => performance.now());
  const interval = options.intervalMs ?? 80;
  const started = now();
  let phaseStarted = started;
  let phase = '';
  let detail: string | undefined;
  let update: ProgressUpdate = {};
  let frame = 0;
  let lastDraw = -Infinity;
  let drawn = false;
  let finished = false;
  let timer: NodeJS.Timeout | undefined;

  const draw = (): void => {
    if (finished || phase === '') return;
    const t = now();
    lastDraw = t;
    const text = progressLine({ phase, detail, update, elapsedMs: t - started, phaseMs: t - phaseStarted });
    stream.write(`\r\x1b[2K${SPINNER[frame++ % SPINNER.length]} ${clip(text, stream.columns ? stream.columns - 2 : undefined)}`);
    drawn = true;
  };
  const schedule = (): void => {
    if (finished) return;
    const wait = lastDraw + interval - now();
    if (wait <= 0) {
      draw();
      return;
    }
    // keep the spinner and the clock moving while nothing reports
    timer ??= setTimeout(() => {
      timer = undefined;
      draw();
      schedule();
    }, wait);
    timer.unref?.();
  };
  return {
    active: true,
    phase(name, d) {
      phase = name;
      detail = d;
      update = {};
      phaseStarted = now();
      lastDraw = -Infinity;
      schedule();
    },
    update(u) {
      update = { ...update, ...u };
      schedule();
    },
    done() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      finished = true;
      if (drawn) stream.write('\r\x1b[2K');
      drawn = false;
    },
  };
}

/**
 * The callbacks src/npm/install.ts's npmInstall takes (InstallProgress),
 * drawn on a Progress. Typed structurally so src/ui needs nothing from src/npm.
 */
export function npmInstallProgress(p: Progress): {
  phase: (phase: string, detail?: string) => void;
  fetched: (done: number, total: number, bytes: number) => void;
} {
  const names: Record<string, string> = {
    config: 'reading npm configuration',
    resolve: 'resolving',
    plan: 'planning from the lockfile',
    fetch: 'fetching',
    link: 'linking node_modules',
    scripts: 'running install scripts',
  };
  return {
    phase: (phase, detail) => {
      if (phase === 'done') return;
      const count = phase === 'fetch' ? /^(\d+) packages$/.exec(detail ?? '') : null;
      if (count) {
        // the count goes into the done/total figures as they come
        p.phase(names.fetch!);
        p.update({ done: 0, total: Number(count[1]), unit: 'packages' });
      } else p.phase(names[phase] ?? phase, detail);
    },
    fetched: (done, total, bytes) => p.update({ done, total, bytes, unit: 'packages' }),
  };
}
