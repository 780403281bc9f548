/**
 * Run the real velo binary (dist/cli/velo.js) in a child process.
 */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { veloBin } from './paths.js';

export interface VeloRun {
  code: number;
  stdout: string;
  stderr: string;
}

export function velo(args: string[], env: NodeJS.ProcessEnv, cwd?: string): VeloRun {
  const r: SpawnSyncReturns<string> = spawnSync(process.execPath, [veloBin(), ...args], {
    env: { ...process.env, CI: '1', ...env },
    cwd,
    encoding: 'utf8',
    timeout: 300_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function veloAsync(args: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<VeloRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [veloBin(), ...args], { env: { ...process.env, CI: '1', ...env }, cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
