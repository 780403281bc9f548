/**
 * Shared set-up for commands: configuration and the store.
 */
import { loadConfig, type VeloConfig } from '../src/config.js';
import { PROJECT_CONFIG_FILE, asConfigOverrides, readProjectConfig } from '../src/project/projectConfig.js';
import { findProjectDir } from '../src/project/detect.js';
import { Store } from '../src/store/store.js';
import type { Io } from './io.js';

/** Environment, then the project's velo.json (nearest up from cwd), then the user's config file. */
export function config(io: Io): VeloConfig {
  const project = findProjectDir(io.cwd, PROJECT_CONFIG_FILE);
  const projectCfg = project?.hasConfig ? readProjectConfig(project.dir) : undefined;
  return loadConfig(io.env, asConfigOverrides(projectCfg));
}

export function openStore(io: Io): Store {
  return Store.open(config(io).home);
}
