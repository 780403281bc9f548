#!/usr/bin/env node
// What publishing costs, in CPU as well as wall time: velo npm ci of the
// 1207-package lockfile (bench/npm-1207) with an empty store, publishing to
// an empty remote prefix (weed mini on loopback), against the same with no
// remote, interleaved pair by pair. Reported per case, medians of N: wall,
// user+sys CPU of velo's process tree (GNU time), and — for the publishing
// runs — weed's own CPU over the run (in real use S3 is not on these cores).
// With --against DIR (another checkout, built: e.g. the commit before a change)
// its velo runs the same two cases in the same rounds, for a same-run comparison.
// Usage: node bench/publish-cost-bench.mjs [--runs N] [--work DIR] [--against DIR]
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchSetup, median, rmNm, velo } from './lib/npm1207.mjs';
import { startWeed } from './lib/weed.mjs';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, work: { type: 'string' }, against: { type: 'string' } } });
const runs = Number(values.runs);
const { work, env, project } = benchSetup('publish-cost', values.work);
const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
/** user+sys seconds a process has used so far (itself and its waited-for children) */
const cpuOf = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').slice(readFileSync(`/proc/${pid}/stat`, 'utf8').lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / ticks;
};

function timed(bin, args, opts) {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S %M', bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', ...opts });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`velo ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  const [user, sys, rssKb] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  return { ms, user, sys, rss: rssKb / 1024, stdout: r.stdout };
}

const weed = await startWeed({ bucket: 'bench' });
const builds = [{ name: 'this', bin: velo }, ...(values.against ? [{ name: 'against', bin: join(values.against, 'bin', 'velo') }] : [])];
const samples = {};
try {
  const cases = {};
  for (const b of builds) {
    const pPub = project(`publish-${b.name}`);
    const pNo = project(`no-remote-${b.name}`);
    cases[`${b.name} publish`] = (i) => {
      rmNm(pPub);
      rmSync(join(work, `pub-store-${b.name}-${i}`), { recursive: true, force: true });
      execFileSync('sync');
      const w0 = cpuOf(weed.pid);
      const r = timed(b.bin, ['npm', 'ci', '--ignore-scripts', '--json'], {
        cwd: pPub,
        env: { ...env, ...weed.env('rw'), VELO_REMOTE: `s3://bench/pub-${b.name}-${i}`, VELO_HOME: join(work, `pub-store-${b.name}-${i}`) },
      });
      const out = JSON.parse(r.stdout);
      if (out.remote.warnings.length || out.remote.published === 0) throw new Error(`publish failed: ${r.stdout}`);
      return { ...r, weed: cpuOf(weed.pid) - w0, mb: out.remote.uploadedBytes / 1e6, requests: out.remote.requests };
    };
    cases[`${b.name} no remote`] = (i) => {
      rmNm(pNo);
      rmSync(join(work, `no-store-${b.name}-${i}`), { recursive: true, force: true });
      execFileSync('sync');
      return timed(b.bin, ['npm', 'ci', '--ignore-scripts'], { cwd: pNo, env: { ...env, VELO_HOME: join(work, `no-store-${b.name}-${i}`) } });
    };
  }
  const labels = Object.keys(cases);
  for (const l of labels) samples[l] = [];
  for (let i = 0; i < runs; i++) {
    // the order rotated every round
    for (let j = 0; j < labels.length; j++) {
      const l = labels[(i + j) % labels.length];
      const s = cases[l](i);
      samples[l].push(s);
      const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
      console.log(
        `${l.padEnd(18)} #${i}: wall ${(s.ms / 1000).toFixed(2)} s, cpu ${(s.user + s.sys).toFixed(2)} s (user ${s.user.toFixed(2)}, sys ${s.sys.toFixed(2)}), peak RSS ${s.rss.toFixed(0)} MB` +
          (s.weed !== undefined ? `, weed ${s.weed.toFixed(2)} s, ${s.mb.toFixed(1)} MB up, ${s.requests} requests` : '') +
          `, load ${load}`,
      );
    }
  }
  const wall = (s) => s.ms / 1000;
  const cpu = (s) => s.user + s.sys;
  console.log('');
  for (const b of builds) {
    const pub = samples[`${b.name} publish`];
    const no = samples[`${b.name} no remote`];
    const med = (xs, f) => median(xs.map(f));
    console.log(
      `${b.name}: medians of ${runs}: publish wall ${med(pub, wall).toFixed(2)} s, cpu ${med(pub, cpu).toFixed(2)} s (user ${med(pub, (s) => s.user).toFixed(2)}), weed ${med(pub, (s) => s.weed).toFixed(2)} s; ` +
        `no remote wall ${med(no, wall).toFixed(2)} s, cpu ${med(no, cpu).toFixed(2)} s (user ${med(no, (s) => s.user).toFixed(2)})`,
    );
    const pairs = pub.map((p, i) => [p, no[i]]);
    console.log(
      `${b.name}: publishing adds (median of same-round pairs): wall ${median(pairs.map(([p, n]) => (wall(p) / wall(n) - 1) * 100)).toFixed(0)}%, ` +
        `velo cpu +${median(pairs.map(([p, n]) => cpu(p) - cpu(n))).toFixed(2)} s (${median(pairs.map(([p, n]) => (cpu(p) / cpu(n) - 1) * 100)).toFixed(0)}%), user +${median(pairs.map(([p, n]) => p.user - n.user)).toFixed(2)} s`,
    );
  }
} finally {
  await weed.stop();
}
