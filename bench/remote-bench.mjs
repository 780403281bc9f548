#!/usr/bin/env node
// The remote tier on the real 1207-package lockfile (bench/npm-1207), in one run
// against SeaweedFS weed mini on loopback (bench/lib/weed.mjs):
//   - a fresh machine: empty local store, warm remote, registry unreachable
//     (npm's registry pointed at a dead loopback port) — velo npm ci must fetch
//     nothing from the registry; beside bun install with an empty cache (bun's cold
//     install from the real registry), interleaved round by round;
//   - what publishing costs: velo npm ci with an empty store and an empty remote
//     prefix (publishes everything) against the same with no remote.
// Medians of N; node_modules, stores and caches removed before each run (untimed).
// Usage: node bench/remote-bench.mjs [--runs N] [--cold-runs M] [--work DIR] [--skip-peers]
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { peerTools } from './lib/peers.mjs';
import { Measurements, benchSetup, repo, rmNm, runTimed as run, velo } from './lib/npm1207.mjs';
import { freePort, startWeed } from './lib/weed.mjs';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '3' }, 'cold-runs': { type: 'string', default: '2' }, work: { type: 'string' }, 'skip-peers': { type: 'boolean' } },
});
const runs = Number(values.runs);
const coldRuns = Number(values['cold-runs']);
const { work, env, project } = benchSetup('remote', values.work);
const m = new Measurements();
const interleaved = (cases, n) => m.interleaved(cases, n);

const weed = await startWeed({ bucket: 'bench' });
try {
  const remoteEnv = (prefix) => ({ ...env, ...weed.env('rw'), VELO_REMOTE: `s3://bench/${prefix}` });
  const deadRegistry = `http://127.0.0.1:${await freePort()}/`;

  // warm the remote once: an empty store installs from the real registry and publishes
  const seed = project('seed');
  const seeded = JSON.parse(run(velo, ['npm', 'ci', '--ignore-scripts', '--json'], { cwd: seed, env: { ...remoteEnv('warm'), VELO_HOME: join(work, 'seed-store') } }).stdout);
  console.log(`seeded the remote: ${seeded.packages} packages, ${seeded.remote.published} published (${(seeded.remote.uploadedBytes / 1e6).toFixed(1)} MB, ${seeded.remote.requests} requests)`);

  // 1. fresh machine, warm remote, registry unreachable vs bun cold
  const pFresh = project('fresh');
  let lastFresh;
  const cases = [
    {
      label: 'velo npm ci (empty store, warm remote, registry unreachable)',
      before: (i) => {
        rmNm(pFresh);
        rmSync(join(work, `fresh-store-${i}`), { recursive: true, force: true });
      },
      run: (i) => {
        const r = run(velo, ['npm', 'ci', '--ignore-scripts', '--json', `--registry=${deadRegistry}`], {
          cwd: pFresh,
          env: { ...remoteEnv('warm'), VELO_REMOTE_MODE: 'read', VELO_HOME: join(work, `fresh-store-${i}`) },
        });
        lastFresh = JSON.parse(r.stdout);
        if (lastFresh.fetched !== 0 || lastFresh.remote.warnings.length) throw new Error(`not all from the remote: ${r.stdout}\n${r.stderr}`);
        return r.ms;
      },
    },
  ];
  if (!values['skip-peers']) {
    const tools = peerTools(repo);
    const pBun = project('bun');
    cases.push({
      label: 'bun install (empty cache, real registry)',
      before: (i) => {
        rmNm(pBun);
        rmSync(join(pBun, 'bun.lock'), { force: true });
        rmSync(join(work, `bun-cache-${i}`), { recursive: true, force: true });
      },
      run: (i) => run(tools.bun, ['install', '--ignore-scripts'], { cwd: pBun, env: { ...env, BUN_INSTALL_CACHE_DIR: join(work, `bun-cache-${i}`) } }).ms,
    });
  }
  interleaved(cases, runs);
  console.log(`fresh machine: ${lastFresh.remote.fromRemote} packages from the remote, ${lastFresh.fetched} from the registry, ${(lastFresh.remote.downloadedBytes / 1e6).toFixed(1)} MB in ${lastFresh.remote.requests} requests`);

  // 2. what publishing adds: empty store + empty remote prefix vs empty store, no remote
  const pPub = project('publish');
  const pNo = project('no-remote');
  interleaved(
    [
      {
        label: 'velo npm ci (empty store, publishing to an empty remote)',
        before: (i) => {
          rmNm(pPub);
          rmSync(join(work, `pub-store-${i}`), { recursive: true, force: true });
        },
        run: (i) => run(velo, ['npm', 'ci', '--ignore-scripts'], { cwd: pPub, env: { ...remoteEnv(`pub-${i}`), VELO_HOME: join(work, `pub-store-${i}`) } }).ms,
      },
      {
        label: 'velo npm ci (empty store, no remote)',
        before: (i) => {
          rmNm(pNo);
          rmSync(join(work, `no-store-${i}`), { recursive: true, force: true });
        },
        run: (i) => run(velo, ['npm', 'ci', '--ignore-scripts'], { cwd: pNo, env: { ...env, VELO_HOME: join(work, `no-store-${i}`) } }).ms,
      },
    ],
    coldRuns,
  );
  const get = (label) => m.get(label);
  const fresh = get('velo npm ci (empty store, warm remote');
  const bun = get('bun install');
  if (bun) console.log(`\nfresh machine from the remote / bun cold: ${(fresh / bun).toFixed(2)} (target <= 0.5)`);
  console.log(`publishing adds: ${((get('velo npm ci (empty store, publishing') / get('velo npm ci (empty store, no remote)') - 1) * 100).toFixed(0)}% (target <= 20%)`);
} finally {
  await weed.stop();
}
