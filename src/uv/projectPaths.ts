/**
 * Where a uv project is: the project directory (nearest pyproject.toml, as
 * uv finds it), the workspace root (where uv.lock lives) and the project
 * environment (UV_PROJECT_ENVIRONMENT, else <workspace>/.venv). Only stats:
 * the no-op path runs this before anything else.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { VeloError } from '../errors.js';

export interface ProjectPaths {
  projectDir: string;
  workspaceDir: string;
  envDir: string;
  lockPath: string;
}

function findUp(start: string, file: string): string | undefined {
  let dir = start;
  for (;;) {
    if (existsSync(join(dir, file))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

export function envDirFor(workspaceDir: string, env: NodeJS.ProcessEnv): string {
  const custom = env.UV_PROJECT_ENVIRONMENT;
  return custom ? resolve(workspaceDir, custom) : join(workspaceDir, '.venv');
}

export function findProjectPaths(cwd: string, env: NodeJS.ProcessEnv, directory?: string, project?: string): ProjectPaths {
  const base = directory ? resolve(cwd, directory) : cwd;
  const projectDir = project ? resolve(base, project) : findUp(base, 'pyproject.toml');
  if (!projectDir || !existsSync(join(projectDir, 'pyproject.toml'))) {
    throw new VeloError('NOT_FOUND', `no pyproject.toml in ${project ? projectDir : `${base} or any parent directory`}`, {
      hint: 'run velo uv sync inside a uv project (uv init creates one)',
    });
  }
  const workspaceDir = findUp(projectDir, 'uv.lock') ?? projectDir;
  return { projectDir, workspaceDir, envDir: envDirFor(workspaceDir, env), lockPath: join(workspaceDir, 'uv.lock') };
}
