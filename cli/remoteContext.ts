/**
 * The remote a command uses: --remote URL / --no-remote when the command has
 * them, else what the configuration names (VELO_REMOTE, velo.json, config
 * file). The remote's modules load only when there is one.
 */
import type { VeloConfig } from '../src/config.js';
import type { Remote } from '../src/remote/remote.js';
import type { RemoteFlag } from '../src/remote/remoteConfig.js';
import type { Io } from './io.js';

export async function openConfiguredRemote(io: Io, cfg: Pick<VeloConfig, 'remote'>, flag?: RemoteFlag): Promise<Remote | undefined> {
  if (flag === false || (!flag && !cfg.remote)) return undefined;
  return (await import('../src/remote/remote.js')).openRemote({ env: io.env, flag, configured: cfg.remote });
}
