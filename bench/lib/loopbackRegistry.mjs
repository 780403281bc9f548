// A local npm registry for benchmarks that must leave the internet out of
// the number: verdaccio (from devDependencies) on 127.0.0.1 in its own
// process, proxying registry.npmjs.org with its cache on. warm() installs a
// project once through it with npm (every packument and tarball it needs
// lands in verdaccio's storage); after that every tool pointed at it is
// served from local disk, packuments included (maxage 24 h: no uplink
// revalidation during the bench).
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './weed.mjs';

async function waitUp(url, child, ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`verdaccio exited with code ${child.exitCode}`);
    try {
      const r = await fetch(`${url}-/ping`);
      if (r.ok) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`verdaccio did not answer at ${url} within ${ms} ms`);
}

/** Start verdaccio in `dir` (storage and config live there); returns { url, warm(projectDir, env), stop() }. */
export async function startLoopbackRegistry(repo, dir, upstream = 'https://registry.npmjs.org/') {
  mkdirSync(join(dir, 'storage'), { recursive: true });
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    [
      `storage: ${join(dir, 'storage')}`,
      'uplinks:',
      '  npmjs:',
      `    url: ${upstream}`,
      '    maxage: 24h',
      '    timeout: 60s',
      '    cache: true',
      'packages:',
      "  '**':",
      '    access: $all',
      '    proxy: npmjs',
      'web:',
      '  enable: false',
      'server:',
      '  keepAliveTimeout: 60',
      'log: { type: stdout, format: json, level: error }',
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  const child = spawn(process.execPath, [join(repo, 'node_modules', 'verdaccio', 'bin', 'verdaccio'), '--config', config, '--listen', `127.0.0.1:${port}`], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitUp(url, child, 60_000);
  return {
    url,
    /** one npm ci through the registry with a throwaway cache: fills verdaccio's storage */
    warm(projectDir, env) {
      const cache = join(dir, 'warm-npm-cache');
      execFileSync('npm', ['ci', '--ignore-scripts', '--cache', cache, `--registry=${url}`], { cwd: projectDir, env: { ...env, npm_config_registry: url }, stdio: 'ignore' });
      rmSync(cache, { recursive: true, force: true });
      rmSync(join(projectDir, 'node_modules'), { recursive: true, force: true });
    },
    stop() {
      child.kill('SIGTERM');
    },
  };
}
