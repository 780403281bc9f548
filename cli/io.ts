/**
 * How commands talk to the terminal: one Io object per run, so commands are
 * testable in-process and nothing in src/ ever prints.
 */
import { writeSync } from 'node:fs';
import { VeloError, toVeloError } from '../src/errors.js';

export interface Io {
  stdout: NodeJS.WriteStream | NodeJS.WritableStream;
  stderr: NodeJS.WriteStream | NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** stdout is a terminal and we are not in CI: progress may be drawn */
  interactive: boolean;
  /** stdout/stderr are this process's fds 1 and 2: lines may be written to them directly (set false when replacing a stream) */
  direct?: boolean;
}

/**
 * The real process's Io. The streams and the terminal check are looked up
 * only when used: creating process.stdout costs ~5 ms, a good part of the
 * no-op's budget, and a one-line answer does not need it (see writeLine).
 */
export function processIo(): Io {
  const env = process.env;
  const ci = Boolean(env.CI) && env.CI !== 'false' && env.CI !== '0';
  return {
    get stdout() {
      return process.stdout;
    },
    get stderr() {
      return process.stderr;
    },
    env,
    cwd: process.cwd(),
    get interactive() {
      return Boolean(process.stdout.isTTY) && !ci && env.TERM !== 'dumb';
    },
    direct: true,
  };
}

/**
 * Write straight to the fd when we can (synchronous, as Node's own stdio is
 * on Linux, so the order with stream writes is kept); a non-blocking fd that
 * is full (EAGAIN) gets the rest through the stream.
 */
function writeLine(io: Io, fd: 1 | 2, text: string): void {
  // looked up only when used: process.stdout's first use loads Node's streams (~4 ms of CPU)
  const stream = (): NodeJS.WritableStream => (fd === 1 ? io.stdout : io.stderr);
  if (!io.direct) {
    stream().write(text);
    return;
  }
  const buf = Buffer.from(text);
  let off = 0;
  try {
    while (off < buf.length) off += writeSync(fd, buf, off);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
    stream().write(buf.subarray(off));
  }
}

export function out(io: Io, text: string): void {
  writeLine(io, 1, text.endsWith('\n') ? text : text + '\n');
}

export function err(io: Io, text: string): void {
  writeLine(io, 2, text.endsWith('\n') ? text : text + '\n');
}

export function json(io: Io, value: unknown): void {
  writeLine(io, 1, JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v), 2) + '\n');
}

/** Render an error as the one clear line (plus hint) users see; returns the exit code. */
export function renderError(io: Io, raw: unknown, asJson = false): number {
  const e = toVeloError(raw) ?? raw;
  if (e instanceof VeloError) {
    if (asJson) json(io, { error: { code: e.code, message: e.message, hint: e.hint } });
    else {
      err(io, `velo: ${e.message}`);
      if (e.hint) err(io, `  hint: ${e.hint}`);
    }
    return e.exitCode;
  }
  const message = e instanceof Error ? (e.stack ?? e.message) : String(e);
  if (asJson) json(io, { error: { code: 'INTERNAL', message } });
  else err(io, `velo: internal error: ${message}`);
  return 70;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v.toFixed(0) : v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[i]}`;
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(2)} s`;
}
