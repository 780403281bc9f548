#!/usr/bin/env node
// Parity on the real lockfile: the node_modules `velo npm ci` lays out for
// bench/npm-1207 against the one `npm ci` lays out, file by file (path, kind,
// exec bit, bytes, symlink target), plus npm's own view of velo's tree
// (`npm ls --all`, `npm install --dry-run` says "up to date").
// Both with --ignore-scripts, as in bench/npm-bench.mjs (the lockfile's
// install scripts download binaries from outside the npm registry).
// Needs the npm registry (or the warm npm cache bench/npm-bench.mjs leaves).
// Usage: node bench/npm-parity.mjs [--work DIR]
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { work: { type: 'string' } } });
const work = values.work ?? join(repo, 'bench', 'work', 'npm-parity');
mkdirSync(work, { recursive: true });
const env = { ...process.env, CI: '1', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
for (const k of Object.keys(env)) if (/^npm_config_(nodedir|userconfig)$/i.test(k)) delete env[k];
const npmCache = join(repo, 'bench', 'work', 'npm', 'npm-cache'); // warm if npm-bench ran; filled otherwise

function project(name) {
  const d = join(work, name);
  rmSync(d, { recursive: true, force: true });
  mkdirSync(d, { recursive: true });
  for (const f of ['package.json', 'package-lock.json']) cpSync(join(repo, 'bench', 'npm-1207', f), join(d, f));
  return d;
}
function run(cmd, args, cwd, extraEnv = {}) {
  const r = spawnSync(cmd, args, { cwd, env: { ...env, ...extraEnv }, encoding: 'utf8', maxBuffer: 1 << 28 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** path -> what a user compares: kind, exec bit, sha256 of bytes, link target */
function listing(root) {
  const out = new Map();
  const walk = (rel) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (r === '.package-lock.json') continue; // npm's bookkeeping: compared by its package keys below
      const p = join(root, r);
      const st = lstatSync(p);
      if (st.isDirectory()) { out.set(r, 'dir'); walk(r); }
      else if (st.isSymbolicLink()) out.set(r, `symlink -> ${readlinkSync(p)}`);
      else out.set(r, `file ${st.mode & 0o111 ? 'exec' : 'plain'} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
    }
  };
  walk('');
  return out;
}

const pNpm = project('npm');
const npmRun = run('npm', ['ci', '--ignore-scripts', '--cache', npmCache], pNpm);
if (npmRun.code !== 0) throw new Error(`npm ci failed:\n${npmRun.out}`);
const pVelo = project('velo');
const home = join(work, 'velo-store');
const veloRun = run(join(repo, 'bin', 'velo'), ['npm', 'ci', '--ignore-scripts'], pVelo, { VELO_HOME: home });
if (veloRun.code !== 0) throw new Error(`velo npm ci failed:\n${veloRun.out}`);

const a = listing(join(pNpm, 'node_modules'));
const b = listing(join(pVelo, 'node_modules'));
const problems = [];
for (const [p, v] of a) if (b.get(p) !== v) problems.push(`${p}: npm ${v} / velo ${b.get(p) ?? 'missing'}`);
for (const [p, v] of b) if (!a.has(p)) problems.push(`${p}: only velo has it (${v})`);
const keys = (d) => Object.keys(JSON.parse(readFileSync(join(d, 'node_modules', '.package-lock.json'), 'utf8')).packages).sort().join('\n');
if (keys(pNpm) !== keys(pVelo)) problems.push('node_modules/.package-lock.json: the package lists differ');
const ls = run('npm', ['ls', '--all', '--cache', npmCache], pVelo);
if (ls.code !== 0) problems.push(`npm ls --all exits ${ls.code} on velo's tree:\n${ls.out.slice(0, 2000)}`);
const dry = run('npm', ['install', '--dry-run', '--ignore-scripts', '--offline', '--cache', npmCache], pVelo);
if (!/up to date/.test(dry.out)) problems.push(`npm install --dry-run does not say "up to date":\n${dry.out.slice(0, 2000)}`);

const count = (m, k) => [...m.values()].filter((v) => v.startsWith(k)).length;
console.log(`npm ci: ${count(a, 'file')} files, ${count(a, 'symlink')} symlinks, ${count(a, 'dir')} dirs; velo npm ci: ${count(b, 'file')} files, ${count(b, 'symlink')} symlinks, ${count(b, 'dir')} dirs`);
if (problems.length) {
  console.log(`parity: ${problems.length} differences\n${problems.slice(0, 50).join('\n')}`);
  process.exit(1);
}
console.log(`parity: identical — every path, kind, exec bit, byte and link target; npm ls --all clean; npm install --dry-run: up to date (velo ${execFileSync(join(repo, 'bin', 'velo'), ['--version'], { encoding: 'utf8' }).trim()}, npm ${execFileSync('npm', ['--version'], { encoding: 'utf8' }).trim()})`);
