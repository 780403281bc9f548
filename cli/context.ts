/**
 * Configuration for commands: environment, then the project's velo.json
 * (nearest up from cwd), then the user's config file. Kept free of the
 * store's modules so the no-op paths that need only configuration stay
 * cheap to load; commands that open the store use storeContext.ts.
 */
import { loadConfig, type VeloConfig } from '../src/config.js';
import { PROJECT_CONFIG_FILE, asConfigOverrides, readProjectConfig } from '../src/project/projectConfig.js';
import { findProjectDir } from '../src/project/detect.js';
import type { Io } from './io.js';
import { join } from 'node:path';

/** The project's velo.json (nearest up from cwd), when there is one. */
export function projectConfigFile(io: Io): string | undefined {
  const project = findProjectDir(io.cwd, PROJECT_CONFIG_FILE);
  return project?.hasConfig ? join(project.dir, PROJECT_CONFIG_FILE) : undefined;
}

export function config(io: Io): VeloConfig {
  const project = findProjectDir(io.cwd, PROJECT_CONFIG_FILE);
  const projectCfg = project?.hasConfig ? readProjectConfig(project.dir) : undefined;
  return loadConfig(io.env, asConfigOverrides(projectCfg));
}
