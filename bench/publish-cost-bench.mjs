#!/usr/bin/env node
// What publishing costs, in CPU as well as wall time: velo npm ci of the
// 1207-package lockfile (bench/npm-1207) with an empty store, publishing to
// an empty remote prefix (weed mini on loopback), against the same with no
// remote, interleaved pair by pair. Reported per case, medians of N: wall,
// user+sys CPU of velo's process tree (GNU time), and — for the publishing
// runs — weed's own CPU over the run (in real use S3 is not on these cores).
// Usage: node bench/publish-cost-bench.mjs [--runs N] [--work DIR]
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchSetup, median, rmNm, velo } from './lib/npm1207.mjs';
import { startWeed } from './lib/weed.mjs';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, work: { type: 'string' } } });
const runs = Number(values.runs);
const { work, env, project } = benchSetup('publish-cost', values.work);
const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
/** user+sys seconds a process has used so far (itself and its waited-for children) */
const cpuOf = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').slice(readFileSync(`/proc/${pid}/stat`, 'utf8').lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / ticks;
};

function timed(args, opts) {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S', velo, ...args], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', ...opts });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`velo ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  const [user, sys] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  return { ms, user, sys, stdout: r.stdout };
}

const weed = await startWeed({ bucket: 'bench' });
const samples = { pub: [], no: [] };
try {
  const pPub = project('publish');
  const pNo = project('no-remote');
  const cases = {
    pub: (i) => {
      rmNm(pPub);
      rmSync(join(work, `pub-store-${i}`), { recursive: true, force: true });
      execFileSync('sync');
      const w0 = cpuOf(weed.pid);
      const r = timed(['npm', 'ci', '--ignore-scripts', '--json'], {
        cwd: pPub,
        env: { ...env, ...weed.env('rw'), VELO_REMOTE: `s3://bench/pub-${i}`, VELO_HOME: join(work, `pub-store-${i}`) },
      });
      const out = JSON.parse(r.stdout);
      if (out.remote.warnings.length || out.remote.published === 0) throw new Error(`publish failed: ${r.stdout}`);
      return { ...r, weed: cpuOf(weed.pid) - w0, mb: out.remote.uploadedBytes / 1e6, requests: out.remote.requests };
    },
    no: (i) => {
      rmNm(pNo);
      rmSync(join(work, `no-store-${i}`), { recursive: true, force: true });
      execFileSync('sync');
      return timed(['npm', 'ci', '--ignore-scripts'], { cwd: pNo, env: { ...env, VELO_HOME: join(work, `no-store-${i}`) } });
    },
  };
  for (let i = 0; i < runs; i++) {
    for (const k of i % 2 === 0 ? ['pub', 'no'] : ['no', 'pub']) {
      const s = cases[k](i);
      samples[k].push(s);
      const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
      console.log(
        `${k === 'pub' ? 'publish  ' : 'no remote'} #${i}: wall ${(s.ms / 1000).toFixed(2)} s, cpu ${(s.user + s.sys).toFixed(2)} s (user ${s.user.toFixed(2)}, sys ${s.sys.toFixed(2)})` +
          (k === 'pub' ? `, weed ${s.weed.toFixed(2)} s, ${s.mb.toFixed(1)} MB up, ${s.requests} requests` : '') +
          `, load ${load}`,
      );
    }
  }
  const med = (k, f) => median(samples[k].map(f));
  const wall = (s) => s.ms / 1000;
  const cpu = (s) => s.user + s.sys;
  console.log(`\nmedians of ${runs}: publish wall ${med('pub', wall).toFixed(2)} s, cpu ${med('pub', cpu).toFixed(2)} s, weed ${med('pub', (s) => s.weed).toFixed(2)} s; no remote wall ${med('no', wall).toFixed(2)} s, cpu ${med('no', cpu).toFixed(2)} s`);
  const pairs = samples.pub.map((p, i) => [p, samples.no[i]]);
  console.log(`publishing adds (median of pairs): wall ${median(pairs.map(([p, n]) => (wall(p) / wall(n) - 1) * 100)).toFixed(0)}%, velo cpu +${median(pairs.map(([p, n]) => cpu(p) - cpu(n))).toFixed(2)} s (${median(pairs.map(([p, n]) => (cpu(p) / cpu(n) - 1) * 100)).toFixed(0)}%)`);
} finally {
  await weed.stop();
}
