/**
 * Run the real velo binary (the bundle's bin, dist/bundle/start.cjs: see paths.ts) in a child process.
 */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { veloBin } from './paths.js';

/**
 * The environment a user's shell would give velo: the test runner's own,
 * minus what \`npm test\`/npx leak into it (npm_config_* from the developer's
 * ~/.npmrc, npm_command, INIT_CWD), plus the test's settings.
 */
export function veloEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'INIT_CWD') base[k] = v;
  return { ...base, CI: '1', ...env };
}

export interface VeloRun {
  code: number;
  stdout: string;
  stderr: string;
}

export function velo(args: string[], env: NodeJS.ProcessEnv, cwd?: string): VeloRun {
  const r: SpawnSyncReturns<string> = spawnSync(process.execPath, [veloBin(), ...args], {
    env: veloEnv(env),
    cwd,
    encoding: 'utf8',
    timeout: 300_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function veloAsync(args: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<VeloRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [veloBin(), ...args], { env: veloEnv(env), cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
