#!/usr/bin/env node
// The remote tier on the real 1207-package lockfile (bench/npm-1207), in one run
// against SeaweedFS weed mini on loopback (bench/lib/weed.mjs):
//   - a fresh machine: empty local store, warm remote, registry unreachable
//     (npm's registry pointed at a dead loopback port) — velo npm ci must fetch
//     nothing from the registry — in both projections: link (the default:
//     every object downloaded, node_modules hard links) and --projection mount
//     with lazy fetch (ready once the keys are in; objects come on first
//     open, so a lazy mount's work is deferred: a first
//     `node -e "require('express')"` on it is timed after each run); beside
//     bun install with an empty cache (bun's cold install from the real
//     registry), interleaved round by round. Tree identical: the linked
//     node_modules must equal the registry install's (kinds, modes, sizes,
//     link targets and every file's bytes), and the mount's listing the linked one;
//   - what publishing costs: velo npm ci with an empty store and an empty remote
//     prefix (publishes everything) against the same with no remote.
// Medians of N; node_modules, stores and caches removed before each run (untimed).
// Usage: node bench/remote-bench.mjs [--runs N] [--cold-runs M] [--work DIR] [--skip-peers] [--skip-mount] [--skip-publish]
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { peerTools } from './lib/peers.mjs';
import { Measurements, assertSameListing, benchSetup, median, repo, rmNm, runTimed as run, treeListing, velo } from './lib/npm1207.mjs';
import { startWeed } from './lib/weed.mjs';
import { startRegistryRelay } from './lib/registryRelay.mjs';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    'cold-runs': { type: 'string', default: '2' },
    work: { type: 'string' },
    'skip-peers': { type: 'boolean' },
    'skip-mount': { type: 'boolean' },
    'skip-publish': { type: 'boolean' },
  },
});
const runs = Number(values.runs);
const coldRuns = Number(values['cold-runs']);
const { work, env, project } = benchSetup('remote', values.work);
const m = new Measurements();
const interleaved = (cases, n) => m.interleaved(cases, n);
const REQUIRE = "require('express')";

const weed = await startWeed({ bucket: 'bench' });
const mountHomes = new Set();
const umountAll = () => {
  for (const home of mountHomes) spawnSync(velo, ['umount', '--all'], { env: { ...env, VELO_HOME: home }, stdio: 'ignore' });
};
try {
  const remoteEnv = (prefix) => ({ ...env, ...weed.env('rw'), VELO_REMOTE: `s3://bench/${prefix}` });
  // warm the remote once: an empty store installs from the real registry (through a
  // loopback relay) and publishes; the relay is then stopped, so the fresh machines
  // below have the seeding machine's npm configuration and no registry
  const relay = await startRegistryRelay();
  const deadRegistry = relay.url;
  const seed = project('seed');
  const seeded = JSON.parse(
    run(velo, ['npm', 'ci', '--ignore-scripts', '--json', `--registry=${deadRegistry}`], { cwd: seed, env: { ...remoteEnv('warm'), VELO_HOME: join(work, 'seed-store') } }).stdout,
  );
  await relay.stop();
  console.log(`seeded the remote: ${seeded.packages} packages, ${seeded.remote.published} published (${(seeded.remote.uploadedBytes / 1e6).toFixed(1)} MB, ${seeded.remote.requests} requests)`);

  // 1. fresh machine, warm remote, registry unreachable: link and lazy mount vs bun cold
  const freshCi = (dir, home, extra = []) => {
    const r = run(velo, ['npm', 'ci', '--ignore-scripts', '--json', `--registry=${deadRegistry}`, ...extra], {
      cwd: dir,
      env: { ...remoteEnv('warm'), VELO_REMOTE_MODE: 'read', VELO_HOME: home },
    });
    const summary = JSON.parse(r.stdout);
    if (summary.fetched !== 0 || summary.remote.warnings.length) throw new Error(`not all from the remote: ${r.stdout}\n${r.stderr}`);
    return { ms: r.ms, summary };
  };
  const pFresh = project('fresh');
  const pMount = project('fresh-mount');
  let lastFresh;
  let lastMount;
  const requireMs = [];
  const cases = [
    {
      label: 'velo npm ci (empty store, warm remote, registry unreachable)',
      before: (i) => {
        rmNm(pFresh);
        rmSync(join(work, `fresh-store-${i}`), { recursive: true, force: true });
      },
      run: (i) => {
        const r = freshCi(pFresh, join(work, `fresh-store-${i}`));
        lastFresh = r.summary;
        return r.ms;
      },
    },
  ];
  if (!values['skip-mount']) {
    cases.push({
      label: 'velo npm ci --projection mount (same, lazy: ready)',
      before: (i) => {
        umountAll();
        rmNm(pMount);
        rmSync(join(work, `mount-store-${i}`), { recursive: true, force: true });
      },
      run: (i) => {
        const home = join(work, `mount-store-${i}`);
        mountHomes.add(home);
        const r = freshCi(pMount, home, ['--projection', 'mount']);
        if (r.summary.projection !== 'mount' || !(r.summary.remote.lazyObjects > 0)) throw new Error(`not a lazy mount: ${JSON.stringify(r.summary)}`);
        lastMount = r.summary;
        // the deferred work: a first require on the fresh mount (not in the install's time)
        const t0 = performance.now();
        execFileSync(process.execPath, ['-e', REQUIRE], { cwd: pMount, stdio: 'ignore' });
        requireMs.push(performance.now() - t0);
        return r.ms;
      },
    });
  }
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
  const mb = (b) => `${(b / 1e6).toFixed(1)} MB`;
  console.log(`fresh machine (link): ${lastFresh.remote.fromRemote} packages from the remote, ${lastFresh.fetched} from the registry, ${mb(lastFresh.remote.downloadedBytes)} in ${lastFresh.remote.requests} requests; laid out from the project record: ${lastFresh.remote.project}`);
  if (lastMount) {
    console.log(`fresh machine (lazy mount): ${lastMount.remote.fromRemote} packages, ${lastMount.remote.lazyObjects} objects left in the remote, ${mb(lastMount.remote.downloadedBytes)} in ${lastMount.remote.requests} requests; laid out from the project record: ${lastMount.remote.project}`);
    console.log(`then node -e "${REQUIRE}" on the fresh mount: median ${median(requireMs).toFixed(0)} ms  [${requireMs.map((x) => x.toFixed(0)).join(', ')}]`);
  }

  // tree identical (untimed): the linked tree equals the registry install's, bytes included; a lazy mount's listing equals it
  const linked = treeListing(join(pFresh, 'node_modules'), { contents: true });
  assertSameListing('fresh machine (link) vs the registry install', treeListing(join(seed, 'node_modules'), { contents: true }), linked);
  let identical = `tree identical: the linked node_modules equals the registry install's (${linked.size} paths, every file's bytes)`;
  if (!values['skip-mount']) {
    umountAll();
    rmNm(pMount);
    const home = join(work, 'mount-store-check');
    mountHomes.add(home);
    freshCi(pMount, home, ['--projection', 'mount']);
    const plain = new Map([...linked].map(([k, v]) => [k, v.startsWith('file ') ? v.slice(0, v.lastIndexOf(' ')) : v]));
    assertSameListing('fresh machine: lazy mount vs link', plain, treeListing(join(pMount, 'node_modules')));
    identical += '; the lazy mount lists the same (read without fetching)';
  }
  console.log(identical);

  // 2. what publishing adds: empty store + empty remote prefix vs empty store, no remote
  if (!values['skip-publish']) {
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
  }
  const get = (label) => m.get(label);
  const bun = get('bun install');
  if (bun) {
    console.log(`\nfresh machine from the remote / bun cold (target <= 0.5):`);
    console.log(`  link:                ${(get('velo npm ci (empty store, warm remote') / bun).toFixed(2)}`);
    const mount = get('velo npm ci --projection mount');
    if (mount !== undefined) {
      console.log(`  lazy mount, ready:   ${(mount / bun).toFixed(2)}`);
      console.log(`  lazy mount + first require: ${((mount + median(requireMs)) / bun).toFixed(2)}`);
    }
  }
  if (!values['skip-publish']) console.log(`publishing adds: ${((get('velo npm ci (empty store, publishing') / get('velo npm ci (empty store, no remote)') - 1) * 100).toFixed(0)}% (target <= 20%)`);
} finally {
  umountAll();
  await weed.stop();
}
