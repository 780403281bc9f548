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
  /** what decides the environment, as the no-op compares it: the arguments and the projection */
  fingerprint: string[];
  paths: ProjectPaths;
  uv: string;
  /** set when the environment is up to date */
  state?: EnvState;
}

/** `projection`: the configured default, used unless the arguments say --projection. */
export function checkNoop(argv: string[], cwd: string, env: NodeJS.ProcessEnv, projection: 'link' | 'mount' = 'link'): NoopAnswer {
  const args = parseSyncArgs(argv);
  const uv = findUv(env);
  const paths = findProjectPaths(cwd, env, args.directory, args.project);
  args.projection ??= projection;
  const fingerprint = [...args.fingerprint, `projection=${args.projection}`];
  const answer: NoopAnswer = { args, fingerprint, paths, uv };
  if (args.delegate || args.forceFull) return answer;
  const state = upToDate({ ...paths, args: fingerprint, env, uvPath: uv });
  if (state) answer.state = state;
  return answer;
}
