/**
 * Run the real cargo with the user's arguments. stdio is the caller's
 * (inherited when it is the process's own), the exit code is cargo's; a
 * cargo killed by a signal gives 128 + the signal's number, like a shell.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { VeloError } from '../errors.js';
import { cargoCommand } from './toolchain.js';

export interface CargoStdio {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export interface RunningCargo {
  child: ChildProcess;
  exit: Promise<number>;
}

export function spawnCargo(args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; stdio: CargoStdio }): RunningCargo {
  const cargo = cargoCommand(options.env);
  const inherit = options.stdio.stdout === process.stdout && options.stdio.stderr === process.stderr;
  const child = spawn(cargo, args, { cwd: options.cwd, env: options.env, stdio: inherit ? 'inherit' : ['inherit', 'pipe', 'pipe'] });
  if (!inherit) {
    child.stdout?.pipe(options.stdio.stdout, { end: false });
    child.stderr?.pipe(options.stdio.stderr, { end: false });
  }
  const exit = new Promise<number>((resolve, reject) => {
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        reject(new VeloError('NOT_FOUND', `cannot run cargo (${cargo}): not found`, { hint: 'install Rust (https://rustup.rs) or put cargo on PATH' }));
      } else reject(new VeloError('TOOL_FAILED', `cannot run cargo (${cargo}): ${err.message}`, { cause: err }));
    });
    child.on('close', (code, signal) => {
      if (code !== null) resolve(code);
      else resolve(128 + (signal ? (constants.signals[signal] ?? 0) : 0));
    });
  });
  return { child, exit };
}
