#!/usr/bin/env node
// velo uv sync on a fresh machine from a warm remote (bench/uv-pandas: pandas,
// numpy, scipy, pyarrow, matplotlib and company, ~65 distributions from
// PyPI), against SeaweedFS weed mini on loopback (bench/lib/weed.mjs), beside
// uv itself in the same run:
//   - uv sync --frozen, empty uv cache (uv's cold install, from PyPI);
//   - uv sync --frozen, warm uv cache (uv's warm install);
//   - velo uv sync --frozen, empty store and empty uv cache, warm remote
//     (read mode): linked (every object downloaded first), and mounted lazily
//     (`--projection mount`: trees and metadata only, files on first open);
//   - then, on a lazy mount (its remote behind a counting proxy): the first
//     `python -c "import requests"` (a light job), then `import pandas, …`,
//     and the bytes each made the mount download, against what the linked
//     sync downloaded; the same imports in a linked environment.
// Scenarios interleave (each round starts at the next one); medians of N.
//
//   npx tsc -p tsconfig.json && node scripts/bundle.mjs && scripts/install-uv.sh &&
//   node bench/uv-remote-bench.mjs [--runs N] [--seed-bytecode]
//
// Needs PyPI (uv lock, the cold uv syncs). Work happens in bench/work/uv-remote.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { systemPython, uvBenchEnv } from './lib/uvBenchEnv.mjs';
import { startWeed } from './lib/weed.mjs';
import { startCountingProxy } from './lib/countingProxy.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const WORK = join(ROOT, 'bench', 'work', 'uv-remote');
const UV = process.env.VELO_UV ?? join(ROOT, '.tools', 'uv', 'bin', 'uv');
const VELO = join(ROOT, 'dist', 'bundle', 'start.cjs');
// --seed-bytecode: the publishing machine syncs with --compile-bytecode, so the remote has every distribution's pycs
const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, 'seed-bytecode': { type: 'boolean', default: false } } });
const RUNS = Number(values.runs);
const LIGHT_IMPORTS = 'import requests';
const IMPORTS = 'import pandas, numpy, scipy.stats, pyarrow, matplotlib.pyplot, requests';

if (!existsSync(VELO)) throw new Error('build first: npx tsc -p tsconfig.json && node scripts/bundle.mjs');
if (!existsSync(UV)) throw new Error('install uv first: scripts/install-uv.sh');

const python = systemPython();
const base = uvBenchEnv(WORK, UV, python);

function run(cmd, args, cwd, env) {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', 'velo-cpu %U %S', cmd, ...args], { cwd, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  const m = /velo-cpu ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr);
  return { ms, cpuMs: m ? (Number(m[1]) + Number(m[2])) * 1000 : NaN, stdout: r.stdout, stderr: r.stderr };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmtMs = (ms) => `${(ms / 1000).toFixed(2)} s`;
const fmtMB = (b) => `${(b / 1e6).toFixed(1)} MB`;

function project(name) {
  const dir = join(WORK, name);
  rmSync(join(dir, '.venv'), { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  cpSync(join(ROOT, 'bench', 'uv-pandas', 'pyproject.toml'), join(dir, 'pyproject.toml'));
  cpSync(join(WORK, 'uv.lock'), join(dir, 'uv.lock'));
  return dir;
}

mkdirSync(WORK, { recursive: true });
if (!existsSync(join(WORK, 'uv.lock'))) {
  const lockDir = join(WORK, 'lock');
  mkdirSync(lockDir, { recursive: true });
  cpSync(join(ROOT, 'bench', 'uv-pandas', 'pyproject.toml'), join(lockDir, 'pyproject.toml'));
  run(UV, ['lock'], lockDir, base);
  cpSync(join(lockDir, 'uv.lock'), join(WORK, 'uv.lock'));
}

const weed = await startWeed({ bucket: 'bench' });
const proxy = await startCountingProxy(weed.endpoint);
const homes = new Set();
const umountAll = () => {
  for (const home of homes) spawnSync(process.execPath, [VELO, 'umount', '--all'], { env: { ...base, VELO_HOME: home }, stdio: 'ignore' });
};
try {
  // timed runs talk to weed directly (the counting proxy, a Node process relaying every byte, costs
  // CPU on the same cores); the import measurement goes through the proxy
  const remote = { ...weed.env('rw'), VELO_REMOTE: 's3://bench/uv' };
  const counted = { ...remote, AWS_ENDPOINT_URL: proxy.endpoint };
  // the machine that publishes: warm uv cache, empty store
  const warmCache = join(WORK, 'uv-cache-warm');
  const seed = project('seed');
  rmSync(join(WORK, 'seed-store'), { recursive: true, force: true });
  const seeded = JSON.parse(run(process.execPath, [VELO, 'uv', 'sync', '--frozen', '--json', ...(values['seed-bytecode'] ? ['--compile-bytecode'] : [])], seed, { ...base, ...remote, UV_CACHE_DIR: warmCache, VELO_HOME: join(WORK, 'seed-store') }).stdout);
  console.log(`seeded the remote: ${seeded.distributions} distributions, ${seeded.remote.published} keys published (${fmtMB(seeded.remote.uploadedBytes)}), ${seeded.bytecode.compiled} modules compiled`);

  const times = new Map();
  const note = (label, r) => {
    if (!times.has(label)) times.set(label, { ms: [], cpu: [] });
    times.get(label).ms.push(r.ms);
    times.get(label).cpu.push(r.cpuMs);
  };
  let linkedBytes = 0;
  const fresh = (label, projection) => (i) => {
    umountAll();
    const dir = project(`velo-${projection}`);
    const home = join(WORK, `store-${projection}-${i}`);
    const cache = join(WORK, `uv-cache-${projection}-${i}`);
    rmSync(home, { recursive: true, force: true });
    rmSync(cache, { recursive: true, force: true });
    homes.add(home);
    const r = run(process.execPath, [VELO, 'uv', 'sync', '--frozen', '--json', '--projection', projection], dir, { ...base, ...remote, VELO_REMOTE_MODE: 'read', UV_CACHE_DIR: cache, VELO_HOME: home });
    const s = JSON.parse(r.stdout);
    if (s.ingested !== 0 || s.fromStore !== s.distributions || s.projection !== projection || s.remote.warnings.length) {
      throw new Error(`${label}: not from the remote alone: ${r.stdout}`);
    }
    if (projection === 'link') linkedBytes = s.remote.downloadedBytes;
    note(label, r);
    rmSync(cache, { recursive: true, force: true });
  };
  const scenarios = [
    [
      'uv sync --frozen (empty uv cache: from PyPI)',
      (i) => {
        const cache = join(WORK, `uv-cache-cold-${i}`);
        rmSync(cache, { recursive: true, force: true });
        note('uv sync --frozen (empty uv cache: from PyPI)', run(UV, ['sync', '--frozen'], project('uv-cold'), { ...base, UV_CACHE_DIR: cache }));
        rmSync(cache, { recursive: true, force: true });
      },
    ],
    ['uv sync --frozen (warm uv cache)', () => note('uv sync --frozen (warm uv cache)', run(UV, ['sync', '--frozen'], project('uv-warm'), { ...base, UV_CACHE_DIR: warmCache }))],
    ['velo uv sync, fresh machine, warm remote (link)', fresh('velo uv sync, fresh machine, warm remote (link)', 'link')],
    ['velo uv sync, fresh machine, warm remote (--projection mount, lazy)', fresh('velo uv sync, fresh machine, warm remote (--projection mount, lazy)', 'mount')],
  ];
  for (let i = 0; i < RUNS; i++) {
    for (let k = 0; k < scenarios.length; k++) {
      const [, fn] = scenarios[(i + k) % scenarios.length];
      spawnSync('sync');
      fn(i);
    }
  }
  console.log(`\n${RUNS} rounds, interleaved (${new Date().toISOString()}):`);
  const uvCold = median(times.get(scenarios[0][0]).ms);
  for (const [label, t] of times) {
    console.log(`${label.padEnd(72)} median ${fmtMs(median(t.ms)).padStart(8)} [${t.ms.map(fmtMs).join(', ')}]  cpu ${fmtMs(median(t.cpu))}  ${(median(t.ms) / uvCold).toFixed(2)}x uv cold`);
  }

  // what importing through a lazy mount downloads
  umountAll();
  const dir = project('velo-mount');
  const home = join(WORK, 'store-import');
  const cache = join(WORK, 'uv-cache-import');
  rmSync(home, { recursive: true, force: true });
  rmSync(cache, { recursive: true, force: true });
  homes.add(home);
  const mounted = JSON.parse(run(process.execPath, [VELO, 'uv', 'sync', '--frozen', '--json', '--projection', 'mount'], dir, { ...base, ...counted, VELO_REMOTE_MODE: 'read', UV_CACHE_DIR: cache, VELO_HOME: home }).stdout);
  await proxy.reset();
  const objectBytes = async () => {
    const c = await proxy.counts();
    return c.byKind.packs + c.byKind.objects;
  };
  console.log(`\nlazy mount: ${mounted.distributions} distributions, ${mounted.files} files, ${fmtMB(mounted.remote.downloadedBytes)} downloaded by the sync; the linked sync downloaded ${fmtMB(linkedBytes)}`);
  // a light job first (one pure-python package and its dependencies), then the heavy imports
  const light = run(join(dir, '.venv', 'bin', 'python'), ['-c', LIGHT_IMPORTS], dir, base);
  const lightBytes = await objectBytes();
  console.log(`first python -c "${LIGHT_IMPORTS}" on it: ${fmtMs(light.ms)} (cpu ${fmtMs(light.cpuMs)}), downloading ${fmtMB(lightBytes)} = ${((lightBytes / linkedBytes) * 100).toFixed(1)}% of the linked sync's download`);
  const imp = run(join(dir, '.venv', 'bin', 'python'), ['-c', IMPORTS], dir, base);
  const objects = await objectBytes();
  console.log(`then python -c "${IMPORTS}": ${fmtMs(imp.ms)} (cpu ${fmtMs(imp.cpuMs)}), downloading ${fmtMB(objects)} in all = ${((objects / linkedBytes) * 100).toFixed(1)}% of the linked sync's download`);
  const id = readdirSync(join(home, 'mounts')).find((d) => existsSync(join(home, 'mounts', d, 'fetch-stats.json')));
  if (id) {
    const stats = JSON.parse(readFileSync(join(home, 'mounts', id, 'fetch-stats.json'), 'utf8'));
    console.log(`the fetcher: ${stats.objects} objects (${fmtMB(stats.bytes)} unpacked) in ${stats.requests} requests, ${stats.failed} failed`);
  }
  const linkDir = join(WORK, 'velo-link');
  const linkLight = run(join(linkDir, '.venv', 'bin', 'python'), ['-c', LIGHT_IMPORTS], linkDir, base);
  const linkImp = run(join(linkDir, '.venv', 'bin', 'python'), ['-c', IMPORTS], linkDir, base);
  console.log(`the same first imports in the last linked environment: ${fmtMs(linkLight.ms)}, then ${fmtMs(linkImp.ms)} (cpu ${fmtMs(linkImp.cpuMs)})`);
  console.log(`uv: ${execFileSync(UV, ['--version'], { encoding: 'utf8' }).trim()}, python ${python}`);
} finally {
  umountAll();
  await proxy.stop();
  await weed.stop();
}
