// What the benchmarks on the real 1207-package lockfile (bench/npm-1207) share:
// a work dir, the environment (no audit/fund/update notices, none of the
// developer's npm, remote or AWS settings), fresh project copies, timed runs,
// medians, and cases measured interleaved round by round.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const velo = join(repo, 'bin', 'velo');
/** the bundle as `npm i -g velo-rift` installs it (scripts/bundle.mjs): run as `node <veloBundle>` */
export const veloBundle = join(repo, 'dist', 'bundle', 'start.cjs');
const src = join(repo, 'bench', 'npm-1207');

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
export const rmNm = (d) => rmSync(join(d, 'node_modules'), { recursive: true, force: true });

/** A fresh work dir (bench/work/<name> unless given) and the scrubbed environment. */
export function benchSetup(name, workOption) {
  const work = workOption ?? join(repo, 'bench', 'work', name);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const env = { ...process.env, CI: '1', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
  for (const k of Object.keys(env)) if (/^(npm_config_(nodedir|userconfig)|VELO_REMOTE.*|AWS_.*)$/i.test(k)) delete env[k];
  /** a fresh copy of the 1207-package project under work */
  const project = (dir) => {
    const d = join(work, dir);
    rmSync(d, { recursive: true, force: true });
    mkdirSync(d, { recursive: true });
    cpSync(join(src, 'package.json'), join(d, 'package.json'));
    cpSync(join(src, 'package-lock.json'), join(d, 'package-lock.json'));
    return d;
  };
  return { work, env, project };
}

/** Run a command to completion; throws with its output when it fails. */
export function runTimed(cmd, args, opts) {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', ...opts });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return { ms, stdout: r.stdout, stderr: r.stderr };
}

export const time = (cmd, args, opts) => runTimed(cmd, args, opts).ms;

/** Results of measured cases, printed as they come. */
export class Measurements {
  results = [];

  #print(label, samples) {
    this.results.push({ label, median: median(samples), samples });
    console.log(`${label.padEnd(58)} median ${median(samples).toFixed(0).padStart(7)} ms  [${samples.map((s) => s.toFixed(0)).join(', ')}]`);
  }

  /** one case, n runs in a row */
  measure(label, n, before, run) {
    const samples = [];
    for (let i = 0; i < n; i++) {
      before?.(i);
      samples.push(run(i));
    }
    this.#print(label, samples);
  }

  /**
   * Each case once per round, `n` rounds, the order rotated every round (on
   * this machine file creation slows down run after run, so a fixed order
   * would favour whoever goes first); the work before each run is not timed,
   * a `sync` settles it.
   */
  interleaved(cases, n) {
    const samples = cases.map(() => []);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < cases.length; j++) {
        const k = (i + j) % cases.length;
        cases[k].before?.(i);
        execFileSync('sync');
        samples[k].push(cases[k].run(i));
      }
    }
    cases.forEach((c, k) => this.#print(c.label, samples[k]));
  }

  get(labelPrefix) {
    return this.results.find((r) => r.label.startsWith(labelPrefix))?.median;
  }
}

/**
 * What a user sees of a node_modules without reading its files: each path's
 * kind, exec bit, size and link target (npm's .package-lock.json left out);
 * with `contents`, each file's sha256 too (that reads every file).
 */
export function treeListing(root, { contents = false } = {}) {
  const out = new Map();
  const walk = (rel) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (r === '.package-lock.json') continue;
      const p = join(root, r);
      const st = lstatSync(p);
      if (st.isDirectory()) {
        out.set(r, 'dir');
        walk(r);
      } else if (st.isSymbolicLink()) out.set(r, `-> ${readlinkSync(p)}`);
      else out.set(r, `file ${st.mode & 0o111 ? 'x' : '-'} ${st.size}${contents ? ` ${createHash('sha256').update(readFileSync(p)).digest('hex')}` : ''}`);
    }
  };
  walk('');
  return out;
}

/** Throws naming the first few differences when two listings (treeListing) differ. */
export function assertSameListing(what, a, b) {
  const diff = [];
  for (const [k, v] of a) if (b.get(k) !== v) diff.push(`${k}: ${v} vs ${b.get(k) ?? 'absent'}`);
  for (const k of b.keys()) if (!a.has(k)) diff.push(`${k}: absent vs ${b.get(k)}`);
  if (diff.length) throw new Error(`${what}: ${diff.length} paths differ, e.g.\n  ${diff.slice(0, 5).join('\n  ')}`);
}
