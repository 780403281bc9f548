#!/usr/bin/env node
// Lazy mounts from the remote on the real 1207-package lockfile (bench/npm-1207),
// against SeaweedFS weed mini on loopback (bench/lib/weed.mjs) behind a counting
// proxy (bench/lib/countingProxy.mjs), registry unreachable:
//   - velo npm ci --projection mount on a fresh machine (empty store, warm
//     remote): lazily (keys only; objects on first open) vs VELO_REMOTE_LAZY=0
//     (every object before the mount), interleaved, medians of N;
//   - on a lazy mount: the bytes of packs and objects downloaded by reading
//     every file of one package (express), then by `node -e require(...)` of
//     a few packages, as a fraction of what the eager install downloads.
// Usage: node bench/remote-lazy-bench.mjs [--runs N] [--work DIR] [--package express]
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Measurements, benchSetup, rmNm, runTimed as run, velo } from './lib/npm1207.mjs';
import { freePort, startWeed } from './lib/weed.mjs';
import { startCountingProxy } from './lib/countingProxy.mjs';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, work: { type: 'string' }, package: { type: 'string', default: 'express' } } });
const runs = Number(values.runs);
const { work, env, project } = benchSetup('remote-lazy', values.work);
const m = new Measurements();

function readAll(dir) {
  let bytes = 0;
  let files = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isDirectory()) {
      const r = readAll(p);
      bytes += r.bytes;
      files += r.files;
    } else if (st.isFile()) {
      bytes += readFileSync(p).length;
      files++;
    }
  }
  return { bytes, files };
}

const weed = await startWeed({ bucket: 'bench' });
const proxy = await startCountingProxy(weed.endpoint);
const homes = [];
const umountAll = (home) => spawnSync(velo, ['umount', '--all'], { env: { ...env, VELO_HOME: home }, stdio: 'ignore' });
try {
  const remoteEnv = (prefix) => ({ ...env, ...weed.env('rw'), AWS_ENDPOINT_URL: proxy.endpoint, VELO_REMOTE: `s3://bench/${prefix}` });
  const deadRegistry = `http://127.0.0.1:${await freePort()}/`;
  const seed = project('seed');
  const seeded = JSON.parse(run(velo, ['npm', 'ci', '--ignore-scripts', '--json'], { cwd: seed, env: { ...remoteEnv('warm'), VELO_HOME: join(work, 'seed-store') } }).stdout);
  console.log(`seeded the remote: ${seeded.packages} packages, ${seeded.remote.published} published (${(seeded.remote.uploadedBytes / 1e6).toFixed(1)} MB)`);

  const mountCi = (dir, home, extra) => {
    if (!homes.includes(home)) homes.push(home);
    const r = run(velo, ['npm', 'ci', '--ignore-scripts', '--json', '--projection', 'mount', `--registry=${deadRegistry}`], {
      cwd: dir,
      env: { ...remoteEnv('warm'), VELO_REMOTE_MODE: 'read', VELO_HOME: home, ...extra },
    });
    const s = JSON.parse(r.stdout);
    if (s.fetched !== 0 || s.projection !== 'mount' || s.remote.warnings.length) throw new Error(`not a mount from the remote alone: ${r.stdout}\n${r.stderr}`);
    return { ms: r.ms, summary: s };
  };
  const pLazy = project('lazy');
  const pEager = project('eager');
  let eagerBytes = 0;
  m.interleaved(
    [
      {
        label: 'velo npm ci --projection mount (lazy: keys only)',
        before: (i) => {
          for (const h of homes) umountAll(h);
          rmNm(pLazy);
          rmSync(join(work, `lazy-store-${i}`), { recursive: true, force: true });
        },
        run: (i) => mountCi(pLazy, join(work, `lazy-store-${i}`), {}).ms,
      },
      {
        label: 'velo npm ci --projection mount (VELO_REMOTE_LAZY=0)',
        before: (i) => {
          for (const h of homes) umountAll(h);
          rmNm(pEager);
          rmSync(join(work, `eager-store-${i}`), { recursive: true, force: true });
        },
        run: (i) => {
          const r = mountCi(pEager, join(work, `eager-store-${i}`), { VELO_REMOTE_LAZY: '0' });
          eagerBytes = r.summary.remote.downloadedBytes;
          return r.ms;
        },
      },
    ],
    runs,
  );

  // what reading part of a lazy mount downloads
  const home = join(work, 'lazy-read-store');
  for (const h of homes) umountAll(h);
  rmNm(pLazy);
  rmSync(home, { recursive: true, force: true });
  const lazy = mountCi(pLazy, home, {});
  const keyBytes = lazy.summary.remote.downloadedBytes;
  const objectBytes = async () => {
    const c = await proxy.counts();
    return c.byKind.packs + c.byKind.objects;
  };
  await proxy.reset();
  const pkgDir = join(pLazy, 'node_modules', values.package);
  const t0 = performance.now();
  const read = readAll(pkgDir);
  const readMs = performance.now() - t0;
  const one = await objectBytes();
  const fmt = (b) => `${(b / 1e6).toFixed(2)} MB`;
  console.log(`\nlazy mount: ${lazy.summary.remote.fromRemote} packages, keys ${fmt(keyBytes)}; the eager install downloaded ${fmt(eagerBytes)} (keys and objects)`);
  console.log(`reading every file of ${values.package} (${read.files} files, ${fmt(read.bytes)}) in ${readMs.toFixed(0)} ms downloaded ${fmt(one)} of objects = ${((one / eagerBytes) * 100).toFixed(2)}% of the eager download (target <= 10%)`);
  const t1 = performance.now();
  execFileSync(process.execPath, ['-e', "require('express'); require('lodash'); require('axios'); require('react')"], { cwd: pLazy, stdio: 'ignore' });
  const requireMs = performance.now() - t1;
  const after = await objectBytes();
  console.log(`then node -e "require('express'); require('lodash'); require('axios'); require('react')" in ${requireMs.toFixed(0)} ms: ${fmt(after)} downloaded in all = ${((after / eagerBytes) * 100).toFixed(2)}%`);
  const mountId = readdirSync(join(home, 'mounts')).find((d) => existsSync(join(home, 'mounts', d, 'fetch-stats.json')));
  const stats = JSON.parse(readFileSync(join(home, 'mounts', mountId, 'fetch-stats.json'), 'utf8'));
  console.log(`the fetcher: ${stats.objects} objects (${fmt(stats.bytes)} unpacked) in ${stats.requests} requests, ${stats.failed} failed`);
} finally {
  for (const h of homes) umountAll(h);
  await proxy.stop();
  await weed.stop();
}
