#!/usr/bin/env node
// Builds, with gcc and libfuse3 — no node-gyp:
//   native/build/velo_native.node   the Node addon (materialize, in-process mount)
//   native/build/velo-mountd        the mount server velo starts per mount (no Node)
//   node native/build.mjs            (from anywhere; paths are relative to this file)
// Needs: gcc, pkg-config, libfuse3-dev (Debian: apt-get install gcc pkg-config libfuse3-dev).
// Node-API symbols stay unresolved in the .node file; they resolve from the
// node binary when it loads the addon.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, renameSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const srcDir = join(here, 'src');
const outDir = join(here, 'build');
const outFile = join(outDir, 'velo_native.node');
const daemonFile = join(outDir, 'velo-mountd');
/** the daemon's own main, and the addon sources it shares (no Node-API) */
const DAEMON_MAIN = 'mountd.c';
const DAEMON_SHARED = ['errname.c', 'fs_copy.c', 'fuse_fs.c', 'fuse_fusermount.c', 'fuse_passthrough.c', 'fuse_server.c', 'fuse_upper.c', 'fuse_upper_nodes.c', 'tree.c'];

function die(message) {
  process.stderr.write(`velo native build: ${message}\n`);
  process.exit(1);
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) return { ok: false, missing: r.error.code === 'ENOENT', out: '', err: String(r.error.message) };
  return { ok: r.status === 0, missing: false, out: r.stdout.trim(), err: r.stderr.trim() };
}

if (!run('gcc', ['--version']).ok) die('gcc not found (install it: apt-get install gcc)');
const pc = run('pkg-config', ['--cflags', '--libs', 'fuse3']);
if (pc.missing) die('pkg-config not found (install it: apt-get install pkg-config libfuse3-dev)');
if (!pc.ok) die('libfuse3 development files not found (install them: apt-get install libfuse3-dev)');
const cflags = run('pkg-config', ['--cflags', 'fuse3']).out.split(/\s+/).filter(Boolean);
const libs = run('pkg-config', ['--libs', 'fuse3']).out.split(/\s+/).filter(Boolean);

let napiInclude;
try {
  napiInclude = createRequire(join(here, '..', 'package.json'))('node-api-headers').include_dir;
} catch {
  die('the npm package node-api-headers is not installed (run npm ci)');
}

const common = ['-O2', '-pthread', '-std=gnu11', '-Wall', '-Wextra', '-Wno-unused-parameter', '-DFUSE_USE_VERSION=312', '-D_FILE_OFFSET_BITS=64'];
const all = readdirSync(srcDir).filter((f) => f.endsWith('.c')).sort();
mkdirSync(outDir, { recursive: true });

/** Compile to a temporary file beside `out`, then rename it into place (atomic for running users). */
function compile(out, args) {
  const tmp = `${out}.${process.pid}.tmp`;
  const cc = spawnSync('gcc', [...args, '-o', tmp, ...libs], { stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8' });
  if (cc.stderr) process.stderr.write(cc.stderr);
  if (cc.status !== 0) die(`gcc failed (exit ${cc.status}) building ${out}; see the messages above`);
  renameSync(tmp, out);
  process.stdout.write(`velo native build: wrote ${out}\n`);
}

compile(outFile, [
  ...common, '-fPIC', '-shared', '-fvisibility=hidden', '-DNAPI_VERSION=8',
  `-I${napiInclude}`, ...cflags,
  ...all.filter((f) => f !== DAEMON_MAIN).map((f) => join(srcDir, f)),
]);
compile(daemonFile, [...common, ...cflags, ...[DAEMON_MAIN, ...DAEMON_SHARED].map((f) => join(srcDir, f))]);
