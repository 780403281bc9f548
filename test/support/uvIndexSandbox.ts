/**
 * The setup the uv tests share: uv itself, the system python, the fixture
 * wheels built under a test's root and served by a PEP 503 index on loopback,
 * and the environment velo uv / uv run with against that index.
 */
import { join } from 'node:path';
import { buildFixtureWheels, ensureUv, settle, startIndex, systemPython, uvTestEnv, type PyIndex } from '../../fixtures/uv/harness.js';

export interface UvIndexSandbox {
  root: string;
  python: string;
  /** VELO_HOME: the store, under root */
  veloHome: string;
  /** the directory the index serves */
  wheels: string;
  index: PyIndex;
}

/** Builds the fixture wheels under root and starts an index serving them. */
export async function startUvIndexSandbox(root: string): Promise<UvIndexSandbox> {
  ensureUv();
  const python = systemPython();
  const veloHome = join(root, 'store');
  const wheels = join(root, 'wheels');
  buildFixtureWheels(wheels, uvTestEnv({ indexUrl: 'http://127.0.0.1:9/simple', cacheDir: join(root, 'caches', 'build'), veloHome, python }));
  return { root, python, veloHome, wheels, index: await startIndex(wheels) };
}

/** Stops the index and waits for environments velo replaced to be deleted in the background. */
export async function stopUvIndexSandbox(index: PyIndex | undefined, root: string | undefined): Promise<void> {
  await index?.stop();
  if (root) await settle(root);
}

/** The environment for a run against the sandbox's index, with its own uv cache (caches/<cacheName>). */
export function uvSandboxEnv(
  sb: { root: string; python: string; veloHome: string; index: PyIndex },
  cacheName: string,
  extra: NodeJS.ProcessEnv = {},
): NodeJS.ProcessEnv {
  return { ...uvTestEnv({ indexUrl: sb.index.url, cacheDir: join(sb.root, 'caches', cacheName), veloHome: sb.veloHome, python: sb.python }), ...extra };
}
