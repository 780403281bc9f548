/**
 * What an npm test file shares: a real registry on loopback serving the
 * fixture packages, a velo store home, and fixture projects (prepared by the
 * real npm against that registry) cleaned up when the file is done. Call at
 * a test file's top level; the fields are set by its beforeAll.
 */
import { afterAll, beforeAll } from 'vitest';
import { prepareProject, type PreparedProject, type PrepareProjectOptions, type ProjectSpec } from './npmProject.js';
import { startRegistry, type Registry } from './registry.js';
import { tempDirs } from './tmp.js';

export interface RegistryProjects {
  registry: Registry;
  /** VELO_HOME shared by the file's tests */
  home: string;
  /** a fresh temp dir, removed after the file */
  tmp(): string;
  project(spec: string | ProjectSpec, opts?: PrepareProjectOptions): Promise<PreparedProject>;
}

export function useRegistryProjects(tmpPrefix: string): RegistryProjects {
  const tmp = tempDirs(tmpPrefix);
  const cleanups: (() => Promise<void>)[] = [];
  const fx = {
    tmp,
    async project(spec: string | ProjectSpec, opts: PrepareProjectOptions = {}): Promise<PreparedProject> {
      const p = await prepareProject(spec, fx.registry, opts);
      cleanups.push(p.cleanup);
      return p;
    },
  } as RegistryProjects;
  beforeAll(async () => {
    fx.registry = await startRegistry();
    fx.home = tmp();
  }, 300_000);
  afterAll(async () => {
    for (const c of cleanups) await c();
    await fx.registry?.stop();
  });
  return fx;
}
