#!/usr/bin/env node
// Stage and `npm pack` every publishable package into pack/ (run through
// scripts/pack.sh, which sets up and provides zig):
//   velo-rift-<v>.tgz                       the CLI: the esbuild bundle (dist/bundle/) and a
//                                           manifest whose optionalDependencies name every
//                                           platform package below
//   velo-rift-linux-x64-gnu-<v>.tgz  …      @velo-rift/<os>-<cpu>-<libc>: the prebuilt
//                                           velo_native.node, velo-mountd and velo-launch; npm installs
//                                           the one whose os/cpu/libc match the machine
// Nothing outside the output directory is written (the bundle too goes
// straight into the staged package), so tests can pack while others run velo.
// Usage: node scripts/pack.mjs --zig PATH [--only linux-x64-gnu,…] [--out DIR (default pack/)]
//        node scripts/pack.mjs --host [--out DIR]   (no zig: this machine's platform with gcc)
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { zig: { type: 'string' }, host: { type: 'boolean' }, only: { type: 'string' }, out: { type: 'string' } } });
const out = values.out ?? join(repo, 'pack');
const stage = join(out, 'stage');
const root = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
const GLIBC = '2.28';
/** the npm dependencies velo loads at run time; everything else is bundled */
const RUNTIME_DEPENDENCIES = ['@napi-rs/blake-hash'];
/** the programs of a platform package (native/build.mjs): the mount server, and the launcher the bin runs for `velo uv` */
const EXECUTABLES = ['velo-mountd', 'velo-launch'];

/** name suffix → zig target, npm os/cpu/libc, what the README says */
const PLATFORMS = [
  { id: 'linux-x64-gnu', target: `x86_64-linux-gnu.${GLIBC}`, cpu: 'x64', libc: 'glibc', says: `Linux x86-64, glibc ${GLIBC} or newer` },
  { id: 'linux-arm64-gnu', target: `aarch64-linux-gnu.${GLIBC}`, cpu: 'arm64', libc: 'glibc', says: `Linux arm64, glibc ${GLIBC} or newer` },
  { id: 'linux-x64-musl', target: 'x86_64-linux-musl', cpu: 'x64', libc: 'musl', says: 'Linux x86-64, musl (Alpine)' },
  { id: 'linux-arm64-musl', target: 'aarch64-linux-musl', cpu: 'arm64', libc: 'musl', says: 'Linux arm64, musl (Alpine)' },
];

function die(msg) {
  process.stderr.write(`pack: ${msg}\n`);
  process.exit(1);
}
const say = (msg) => process.stderr.write(`pack: ${msg}\n`);

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', ...opts });
  if (r.status !== 0) die(`${cmd} ${args.join(' ')} failed (${r.status ?? r.error?.message})`);
  return r.stdout;
}

/** The newest GLIBC_x.y symbol version a binary needs ('none' when it needs none: musl), via objdump when it is there. */
function glibcNeeded(file) {
  const r = spawnSync('objdump', ['-T', file], { encoding: 'utf8' });
  if (r.status !== 0) return 'unknown (no objdump)';
  const versions = [...new Set(r.stdout.match(/GLIBC_[0-9.]+/g) ?? [])].map((v) => v.slice(6));
  versions.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  return versions.at(-1) ?? 'none';
}

let platforms;
if (root.bin?.velo !== 'dist/bundle/velo') die(`package.json's bin must be dist/bundle/velo (the bundle's bin script), not ${root.bin?.velo}`);
if (values.host) {
  if (process.platform !== 'linux') die('--host packs Linux only');
  const libc = process.report.getReport().header.glibcVersionRuntime ? 'gnu' : 'musl';
  platforms = [{ ...PLATFORMS.find((p) => p.id === `linux-${process.arch}-${libc}`), target: undefined }];
  if (!platforms[0].id) die(`no platform package for linux-${process.arch}-${libc}`);
} else {
  if (!values.zig) die('pass --zig PATH (scripts/pack.sh installs it) or --host');
  const only = values.only?.split(',');
  platforms = PLATFORMS.filter((p) => !only || only.includes(p.id));
}

rmSync(out, { recursive: true, force: true });
mkdirSync(stage, { recursive: true });

// --- the platform packages ---------------------------------------------------------
for (const p of platforms) {
  const dir = join(stage, p.id);
  const cc = p.target ? ['--cc', `${values.zig} cc`, '--target', p.target] : [];
  say(`building ${p.id}${p.target ? ` (zig cc -target ${p.target})` : ' (gcc, this machine)'}`);
  run(process.execPath, [join(repo, 'native', 'build.mjs'), ...cc, '--out', dir]);
  for (const f of EXECUTABLES) chmodSync(join(dir, f), 0o755);
  if (p.libc === 'glibc') {
    for (const f of ['velo_native.node', ...EXECUTABLES]) {
      const needs = glibcNeeded(join(dir, f));
      say(`${p.id}: ${f} needs glibc ${needs}`);
      // the baseline the README promises (a --host build has the build machine's own)
      if (p.target && /^[0-9.]+$/.test(needs) && needs.localeCompare(GLIBC, 'en', { numeric: true }) > 0) die(`${p.id}/${f} needs glibc ${needs}, above the ${GLIBC} baseline`);
    }
  }
  const name = `@velo-rift/${p.id}`;
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify(
      {
        name,
        version: root.version,
        description: `velo's prebuilt native addon, mount server and launcher for ${p.says}`,
        license: root.license,
        os: ['linux'],
        cpu: [p.cpu],
        libc: [p.libc],
        files: ['velo_native.node', ...EXECUTABLES],
      },
      null,
      2,
    ) + '\n',
  );
  writeFileSync(
    join(dir, 'README.md'),
    `# ${name}\n\nThe prebuilt native parts of [velo-rift](https://www.npmjs.com/package/velo-rift) for ${p.says}:\n` +
      'the Node addon `velo_native.node` (multi-threaded linking, mounts), the mount server `velo-mountd` and\n' +
      '`velo-launch`, which answers an unchanged `velo uv sync` without starting Node.\n' +
      'libfuse3 is opened at run time: without it velo works and links instead of mounting.\n\n' +
      'Install `velo-rift` (`npm i -g velo-rift`); npm picks this package when it fits the machine.\n',
  );
  p.name = name;
}

// --- the CLI package -----------------------------------------------------------------
say('bundling velo (scripts/bundle.mjs)');
const cli = join(stage, 'velo-rift');
run(process.execPath, [join(repo, 'scripts', 'bundle.mjs'), '--outdir', join(cli, 'dist', 'bundle')]);
copyFileSync(join(repo, 'README.md'), join(cli, 'README.md'));
const manifest = {
  name: root.name,
  version: root.version,
  description: root.description,
  type: root.type,
  license: root.license,
  bin: root.bin,
  engines: root.engines,
  files: root.files,
  // what the bundle leaves outside (scripts/bundle.mjs: external); the rest is in it
  dependencies: Object.fromEntries(RUNTIME_DEPENDENCIES.map((d) => [d, root.dependencies[d] ?? die(`${d} is not in package.json`)])),
  // every platform package this version has, not only the ones built in this run
  optionalDependencies: Object.fromEntries(PLATFORMS.map((p) => [`@velo-rift/${p.id}`, root.version])),
};
writeFileSync(join(cli, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');

// --- npm pack ------------------------------------------------------------------------
for (const dir of [cli, ...platforms.map((p) => join(stage, p.id))]) {
  const json = JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', out], { cwd: dir }));
  for (const t of json) say(`wrote ${join(out, t.filename)} (${(t.size / 1024).toFixed(0)} KiB, ${t.entryCount} files)`);
}
const tarballs = readdirSync(out).filter((f) => f.endsWith('.tgz'));
writeFileSync(join(out, 'manifest.json'), JSON.stringify({ version: root.version, tarballs, platforms: platforms.map((p) => p.name) }, null, 2) + '\n');
process.stdout.write(tarballs.map((t) => join(out, t)).join('\n') + '\n');

