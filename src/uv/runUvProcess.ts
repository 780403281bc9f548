/**
 * Run uv (or the environment's python) as a child process and collect its
 * output. A failure becomes a TOOL_FAILED VeloError that quotes the command
 * and the end of what it printed, so the user sees uv's own explanation.
 */
import { spawn } from 'node:child_process';
import { VeloError } from '../errors.js';

export interface ProcessResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  input?: string;
  /** each chunk of stderr as it arrives (progress) */
  onStderr?: (chunk: string) => void;
}

export function runProcess(command: string, args: string[], options: RunOptions): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const errs: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => {
      errs.push(d);
      options.onStderr?.(d.toString('utf8'));
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') reject(new VeloError('NOT_FOUND', `cannot run ${command}: not found`, { cause: err }));
      else reject(new VeloError('TOOL_FAILED', `cannot run ${command}: ${err.message}`, { cause: err }));
    });
    child.on('close', (code, signal) => {
      resolve({ code: code ?? -1, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(errs).toString('utf8') });
    });
    child.stdin.on('error', () => {
      /* the child may exit before reading its input; its exit code tells */
    });
    child.stdin.end(options.input ?? '');
  });
}

/** The last few lines of a tool's stderr, for an error message. */
export function tail(text: string, lines = 12): string {
  const all = text.trimEnd().split('\n');
  return (all.length > lines ? ['…', ...all.slice(-lines)] : all).join('\n');
}

export function toolFailed(what: string, command: string, args: string[], r: ProcessResult, exitCode?: number): VeloError {
  const how = r.signal ? `was killed by ${r.signal}` : `exited with code ${r.code}`;
  const printed = tail(r.stderr || r.stdout);
  return new VeloError('TOOL_FAILED', `${what}: \`${[command, ...args].join(' ')}\` ${how}${printed ? `:\n${printed}` : ''}`, exitCode === undefined ? undefined : { exitCode });
}

/**
 * uv failed: velo exits with uv's own exit code (1 for a failed operation
 * such as a hash mismatch or a stale lock under --locked, 2 for a uv.lock
 * that does not parse, …) and quotes what uv said. Killed by a signal: 13.
 */
export function uvFailed(what: string, uv: string, args: string[], r: ProcessResult): VeloError {
  return toolFailed(what, uv, args, r, !r.signal && r.code > 0 && r.code < 126 ? r.code : undefined);
}

/** `uv lock --check` said the lock no longer matches the project (and nothing else went wrong). */
export function isStaleLock(r: ProcessResult): boolean {
  return r.code === 1 && /needs to be updated/.test(r.stderr);
}
