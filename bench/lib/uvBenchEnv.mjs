// The environment the uv benches run velo and uv in: the machine's python3
// (resolved), a uv cache and a velo store under the bench's work directory,
// no python downloads, no UV_* settings or VIRTUAL_ENV from the caller
// (PYTHONDONTWRITEBYTECODE would keep plain uv environments from ever getting
// bytecode), and the node running the bench first on PATH: velo's bin and
// its launcher exec the `node` on PATH, and the launcher answers the no-op
// only for the node that wrote the environment's state.
import { execFileSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';

export function systemPython() {
  return realpathSync(execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim());
}

export function uvBenchEnv(work, uv, python) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('UV_') || k === 'VIRTUAL_ENV' || k === 'PYTHONDONTWRITEBYTECODE') delete env[k];
  return {
    ...env,
    PATH: `${dirname(process.execPath)}:${process.env.PATH}`,
    CI: '1',
    UV_CACHE_DIR: join(work, 'uv-cache'),
    UV_PYTHON: python,
    UV_PYTHON_DOWNLOADS: 'never',
    UV_NO_PROGRESS: '1',
    VELO_UV: uv,
    VELO_HOME: join(work, 'store'),
  };
}
