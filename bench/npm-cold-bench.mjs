#!/usr/bin/env node
// Cold installs of the 1207-package lockfile (bench/npm-1207) from the public
// registry: velo npm ci beside bun, pnpm (plain and with its global virtual
// store) and npm ci, each with an empty store/cache per run, one run of each
// case per round in an order rotated every round, medians of N rounds,
// ratios to velo, peak RSS from /usr/bin/time -v (the largest single process
// of the tool's process tree). Then velo's requests, counted by a loopback
// proxy in front of the registry: metadata (packument) requests and tarball
// GETs against the distinct tarballs the plan needs.
// Peers (bun 1.4.5, pnpm 12.24.0) are installed into bench/work/tools by
// bench/lib/peers.mjs; their lockfiles (bun.lock, pnpm-lock.yaml) are made from
// package-lock.json once, untimed.
// --loopback: every tool points at the same local registry instead (verdaccio
// on 127.0.0.1 proxying the public one, its own cache warmed by one untimed
// npm ci first: bench/lib/loopbackRegistry.mjs), which takes the internet out
// of the number; the tools' own stores and caches are still empty per run.
// --base DIR: also velo from another checkout (DIR/bin/velo, built), e.g. main's, in the same rounds:
// a change's effect on wall, CPU and peak RSS measured interleaved.
// Usage: node bench/npm-cold-bench.mjs [--runs N] [--work DIR] [--skip-peers] [--skip-count] [--with-pacote] [--only LABEL-PREFIX] [--loopback] [--base DIR]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchSetup, median, repo, velo } from './lib/npm1207.mjs';
import { startLoopbackRegistry } from './lib/loopbackRegistry.mjs';
import { peerTools } from './lib/peers.mjs';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    work: { type: 'string' },
    'skip-peers': { type: 'boolean' },
    'skip-count': { type: 'boolean' },
    // also velo through pacote with a packument per package (VELO_FETCH_DIRECT=0): the fetch before the direct path
    'with-pacote': { type: 'boolean' },
    // run only the cases whose label starts with this (e.g. 'velo')
    only: { type: 'string' },
    loopback: { type: 'boolean' },
    base: { type: 'string' },
  },
});
const runs = Number(values.runs);
const { work, env: benchEnv } = benchSetup('npm-cold', values.work);
const src = join(repo, 'bench', 'npm-1207');
const PUBLIC_REGISTRY = 'https://registry.npmjs.org/';
const loopback = values.loopback ? await startLoopbackRegistry(repo, join(work, 'loopback-registry'), PUBLIC_REGISTRY) : undefined;
process.on('exit', () => loopback?.stop());
const REGISTRY = loopback?.url ?? PUBLIC_REGISTRY;
// npm and pnpm read npm_config_registry, bun NPM_CONFIG_REGISTRY
const env = { ...benchEnv, npm_config_registry: REGISTRY, NPM_CONFIG_REGISTRY: REGISTRY };
for (const k of Object.keys(env)) if (/^npm_config_cache$/i.test(k)) delete env[k];

function project(name, files) {
  const d = join(work, name);
  rmSync(d, { recursive: true, force: true });
  mkdirSync(d, { recursive: true });
  for (const [from, to] of files) cpSync(from, join(d, to));
  return d;
}

/** Run under /usr/bin/time -v: wall ms, peak RSS (MB), CPU seconds (user+sys of the process tree). */
function timed(cmd, args, opts) {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-v', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-4000)}`);
  const rss = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1] ?? NaN) / 1024;
  const cpu = ['User', 'System'].reduce((sum, k) => sum + Number(new RegExp(`${k} time \\(seconds\\): ([\\d.]+)`).exec(r.stderr)?.[1] ?? NaN), 0);
  return { ms, rss, cpu };
}

const lockFiles = [
  [join(src, 'package.json'), 'package.json'],
  [join(src, 'package-lock.json'), 'package-lock.json'],
];
if (loopback) {
  const t0 = performance.now();
  loopback.warm(project('loopback-warm', lockFiles), env);
  console.log(`loopback registry ${REGISTRY} warmed in ${((performance.now() - t0) / 1000).toFixed(1)} s (untimed)`);
}
const cases = [
  {
    label: 'velo npm ci (empty store)',
    run: (i) => {
      const d = project(`velo-${i}`, lockFiles);
      return timed(velo, ['npm', 'ci', '--ignore-scripts'], { cwd: d, env: { ...env, VELO_HOME: join(work, `velo-home-${i}`), npm_config_cache: join(work, `velo-npm-cache-${i}`) } });
    },
  },
  ...(values.base
    ? [
        {
          label: `velo npm ci (empty store), ${values.base}`,
          run: (i) => {
            const d = project(`velo-base-${i}`, lockFiles);
            return timed(join(values.base, 'bin', 'velo'), ['npm', 'ci', '--ignore-scripts'], {
              cwd: d,
              env: { ...env, VELO_HOME: join(work, `velo-base-home-${i}`), npm_config_cache: join(work, `velo-base-npm-cache-${i}`) },
            });
          },
        },
      ]
    : []),
  ...(values['with-pacote']
    ? [
        {
          label: 'velo npm ci (empty store, VELO_FETCH_DIRECT=0: pacote, packuments)',
          run: (i) => {
            const d = project(`velo-pacote-${i}`, lockFiles);
            return timed(velo, ['npm', 'ci', '--ignore-scripts'], {
              cwd: d,
              env: { ...env, VELO_FETCH_DIRECT: '0', VELO_HOME: join(work, `velo-pacote-home-${i}`), npm_config_cache: join(work, `velo-pacote-npm-cache-${i}`) },
            });
          },
        },
      ]
    : []),
  {
    label: 'npm ci (empty cache)',
    run: (i) => {
      const d = project(`npm-${i}`, lockFiles);
      return timed('npm', ['ci', '--ignore-scripts', '--cache', join(work, `npm-cache-${i}`)], { cwd: d, env });
    },
  },
];

if (!values['skip-peers']) {
  const tools = peerTools(repo);
  // lockfiles in each peer's own format, made once from package-lock.json (untimed)
  const bunSetup = project('bun-setup', lockFiles);
  execFileSync(tools.bun, ['install', '--lockfile-only', '--ignore-scripts'], { cwd: bunSetup, env: { ...env, BUN_INSTALL_CACHE_DIR: join(work, 'bun-setup-cache') }, stdio: 'ignore' });
  const pnpmSetup = project('pnpm-setup', lockFiles);
  execFileSync(tools.pnpm, ['import'], { cwd: pnpmSetup, env: { ...env, npm_config_cache_dir: join(work, 'pnpm-setup-cache') }, stdio: 'ignore' });
  const bunFiles = [[join(src, 'package.json'), 'package.json'], [join(bunSetup, 'bun.lock'), 'bun.lock']];
  const pnpmFiles = [[join(src, 'package.json'), 'package.json'], [join(pnpmSetup, 'pnpm-lock.yaml'), 'pnpm-lock.yaml']];
  cases.push({
    label: `bun ${tools.versions.bun} install --frozen-lockfile (empty cache)`,
    run: (i) => {
      const d = project(`bun-${i}`, bunFiles);
      return timed(tools.bun, ['install', '--frozen-lockfile', '--ignore-scripts'], { cwd: d, env: { ...env, BUN_INSTALL_CACHE_DIR: join(work, `bun-cache-${i}`) } });
    },
  });
  for (const gvs of [false, true]) {
    cases.push({
      label: `pnpm ${tools.versions.pnpm} install --frozen-lockfile${gvs ? ' (global virtual store)' : ''} (empty store)`,
      run: (i) => {
        const d = project(`pnpm-${gvs ? 'gvs-' : ''}${i}`, pnpmFiles);
        const args = ['install', '--frozen-lockfile', '--ignore-scripts', '--store-dir', join(work, `pnpm-store-${gvs ? 'gvs-' : ''}${i}`), '--cache-dir', join(work, `pnpm-cache-${gvs ? 'gvs-' : ''}${i}`)];
        if (gvs) args.push('--config.enable-global-virtual-store=true');
        return timed(tools.pnpm, args, { cwd: d, env });
      },
    });
  }
}

if (values.only) cases.splice(0, cases.length, ...cases.filter((c) => c.label.startsWith(values.only)));
const samples = cases.map(() => []);
for (let i = 0; i < runs; i++) {
  for (let j = 0; j < cases.length; j++) {
    const k = (i + j) % cases.length;
    execFileSync('sync');
    samples[k].push(cases[k].run(i));
  }
  // each round's stores and projects go before the next (disk space, page cache)
  for (const name of execFileSync('ls', [work], { encoding: 'utf8' }).split('\n')) {
    if (name && new RegExp(`-${i}$`).test(name)) rmSync(join(work, name), { recursive: true, force: true });
  }
}

const results = cases.map((c, k) => ({
  label: c.label,
  ms: median(samples[k].map((s) => s.ms)),
  rss: median(samples[k].map((s) => s.rss)),
  cpu: median(samples[k].map((s) => s.cpu)),
  all: samples[k],
}));
const veloMs = results[0].ms;
const bun = results.find((r) => r.label.startsWith('bun'));
const pnpm = results.find((r) => r.label.startsWith('pnpm') && !r.label.includes('global'));
console.log(`\ncold installs of bench/npm-1207 from ${loopback ? `a loopback registry (${REGISTRY}, verdaccio with a warm cache)` : REGISTRY}, ${runs} rounds, medians, load ${loadavg()[0].toFixed(1)} at the end\n`);
console.log('| case | median ms | runs ms | CPU s user+sys (median) | peak RSS MB (median) | time / velo |\n|---|---|---|---|---|---|');
for (const r of results) {
  console.log(`| ${r.label} | ${r.ms.toFixed(0)} | ${r.all.map((s) => s.ms.toFixed(0)).join(', ')} | ${r.cpu.toFixed(1)} | ${r.rss.toFixed(0)} | ${(r.ms / veloMs).toFixed(2)} |`);
}
console.log('\nper run (wall s / CPU s / peak RSS MB):');
for (const r of results) console.log(`- ${r.label}: ${r.all.map((x) => `${(x.ms / 1000).toFixed(1)}/${x.cpu.toFixed(1)}/${x.rss.toFixed(0)}`).join(', ')}`);
if (bun) console.log(`\nvelo / bun: ${(veloMs / bun.ms).toFixed(2)}x`);
if (pnpm) console.log(`velo / pnpm: ${(veloMs / pnpm.ms).toFixed(2)}x`);

// velo's requests, through a counting proxy on loopback
if (!values['skip-count']) {
  const upstream = new URL(REGISTRY);
  const client = upstream.protocol === 'http:' ? http : https;
  const agent = new client.Agent({ keepAlive: true, maxSockets: 64 });
  const seen = { packument: 0, tarball: 0, other: 0, urls: new Set() };
  const server = http.createServer((req, res) => {
    const path = req.url ?? '/';
    const kind = /\/-\/[^/]+\.tgz$/.test(path) ? 'tarball' : path.startsWith('/-/') ? 'other' : 'packument';
    seen[kind]++;
    if (kind === 'tarball') seen.urls.add(path);
    const headers = { ...req.headers, host: upstream.host };
    const up = client.request({ hostname: upstream.hostname, port: upstream.port || undefined, path, method: req.method, headers, agent }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', (e) => {
      res.writeHead(502);
      res.end(String(e));
    });
    req.pipe(up);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const registry = `http://127.0.0.1:${server.address().port}/`;
  const d = project('velo-count', lockFiles);
  // asynchronously: the proxy lives in this process's event loop
  const r = await new Promise((resolve) => {
    const child = spawn(velo, ['npm', 'ci', '--ignore-scripts', '--json', `--registry=${registry}`], {
      cwd: d,
      env: { ...env, npm_config_registry: registry, VELO_HOME: join(work, 'velo-count-home'), npm_config_cache: join(work, 'velo-count-cache') },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
  server.close();
  agent.destroy();
  if (r.status !== 0) throw new Error(`velo through the counting proxy failed:\n${r.stderr}`);
  const lock = JSON.parse(readFileSync(join(src, 'package-lock.json'), 'utf8'));
  const fetched = JSON.parse(r.stdout).fetched;
  console.log(`\nvelo through a counting proxy: ${seen.packument} metadata requests, ${seen.tarball} tarball GETs for ${seen.urls.size} distinct tarball URLs` +
    ` (${fetched} packages fetched; the lockfile lists ${Object.keys(lock.packages).length - 1} entries with ${new Set(Object.values(lock.packages).map((p) => p.integrity).filter(Boolean)).size} distinct integrities, platform-foreign optional ones included)`);
}
loopback?.stop();
if (existsSync(work)) rmSync(work, { recursive: true, force: true });
