/**
 * The remote a command uses: --remote URL / --no-remote when the command has
 * them, else what the configuration names (VELO_REMOTE, velo.json, config
 * file). The remote's modules load only when there is one.
 */
import type { VeloConfig } from '../src/config.js';
import { VeloError } from '../src/errors.js';
import type { Remote } from '../src/remote/remote.js';
import type { RemoteFlag } from '../src/remote/remoteConfig.js';
import type { Io } from './io.js';

export async function openConfiguredRemote(io: Io, cfg: Pick<VeloConfig, 'remote'>, flag?: RemoteFlag): Promise<Remote | undefined> {
  if (flag === false || (!flag && !cfg.remote)) return undefined;
  return (await import('../src/remote/remote.js')).openRemote({ env: io.env, flag, configured: cfg.remote });
}

/**
 * Take velo's --remote URL / --remote=URL / --no-remote out of a wrapped
 * tool's arguments (those before a `--`), for commands whose other
 * arguments go on to the tool (velo uv sync, velo cargo).
 */
export function takeRemoteFlag(args: string[]): { args: string[]; flag: RemoteFlag | undefined } {
  const rest: string[] = [];
  let flag: RemoteFlag | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      rest.push(...args.slice(i));
      break;
    }
    if (a === '--no-remote') flag = false;
    else if (a === '--remote' || a.startsWith('--remote=')) {
      const v = a === '--remote' ? args[++i] : a.slice('--remote='.length);
      if (!v || v.startsWith('-')) throw new VeloError('USAGE', '--remote needs a URL (s3://bucket/prefix)');
      flag = v;
    } else rest.push(a);
  }
  return { args: rest, flag };
}
