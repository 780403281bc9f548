/**
 * The no-op question, answered with stats only: is the project environment
 * exactly what `velo uv sync <args>` would build? Imports nothing heavy, so
 * an unchanged environment costs a few milliseconds beyond Node's start-up.
 */
import { upToDate, type EnvState } from './envState.js';
import { findProjectPaths, type ProjectPaths } from './projectPaths.js';
import { parseSyncArgs, type SyncArgs } from './syncArgs.js';
import { findUv } from './uvBinary.js';

export interface NoopAnswer {
  args: SyncArgs;
  paths: ProjectPaths;
  uv: string;
  /** set when the environment is up to date */
  state?: EnvState;
}

export function checkNoop(argv: string[], cwd: string, env: NodeJS.ProcessEnv): NoopAnswer {
  const args = parseSyncArgs(argv);
  const uv = findUv(env);
  const paths = findProjectPaths(cwd, env, args.directory, args.project);
  const answer: NoopAnswer = { args, paths, uv };
  if (args.delegate || args.forceFull) return answer;
  const state = upToDate({ ...paths, args: args.fingerprint, env, uvPath: uv });
  if (state) answer.state = state;
  return answer;
}
