#!/usr/bin/env node
// Builds — no node-gyp:
//   <out>/velo_native.node   the Node addon (materialize, in-process mount)
//   <out>/velo-mountd        the mount server velo starts per mount (no Node)
//   <out>/velo-launch        the launcher the bin runs first: answers an unchanged
//                            `velo uv sync` without Node, else execs node (src/launch/)
//
//   node native/build.mjs                      gcc for this machine into native/build/
//   node native/build.mjs --cc "zig cc" --target x86_64-linux-gnu.2.17 --out DIR
//                                              a prebuilt for another glibc or CPU (scripts/pack.sh)
//
// Needs a C compiler (gcc, or zig cc for --target) and libfuse3's headers
// (Debian: apt-get install gcc pkg-config libfuse3-dev). libfuse3 itself is
// not linked: native/src/fuse_dl.c opens libfuse3.so.3 with dlopen when a
// mount starts, so the binaries run (without mounts) where it is missing.
// Node-API symbols stay unresolved in the .node file; they resolve from the
// node binary when it loads the addon.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const srcDir = join(here, 'src');
const { values: opts } = parseArgs({
  options: {
    cc: { type: 'string', default: process.env.CC || 'gcc' },
    target: { type: 'string' },
    out: { type: 'string', default: join(here, 'build') },
  },
});
const outDir = resolve(opts.out);
const outFile = join(outDir, 'velo_native.node');
const daemonFile = join(outDir, 'velo-mountd');
const launcherFile = join(outDir, 'velo-launch');
const launchDir = join(srcDir, 'launch');
/** the daemon's own main, and the addon sources it shares (no Node-API) */
const DAEMON_MAIN = 'mountd.c';
const DAEMON_SHARED = ['errname.c', 'fs_copy.c', 'fuse_dl.c', 'fuse_fetch.c', 'fuse_fs.c', 'fuse_fusermount.c', 'fuse_passthrough.c', 'fuse_server.c', 'fuse_upper.c', 'fuse_upper_nodes.c', 'tree.c'];

function die(message) {
  process.stderr.write(`velo native build: ${message}\n`);
  process.exit(1);
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) return { ok: false, missing: r.error.code === 'ENOENT', out: '', err: String(r.error.message) };
  return { ok: r.status === 0, missing: false, out: r.stdout.trim(), err: r.stderr.trim() };
}

const [ccCmd, ...ccArgs] = opts.cc.split(/\s+/).filter(Boolean);
if (!run(ccCmd, [...ccArgs, '--version']).ok) die(`${opts.cc} not found (install it: apt-get install gcc)`);
// a prebuilt (--target, zig cc): stripped; the sign-compare warning comes from musl's CMSG_NXTHDR
const target = opts.target ? ['-target', opts.target, '-s', '-Wno-sign-compare'] : [];
// zig links musl executables statically unless told; a static one cannot dlopen libfuse3
const exeFlags = opts.target?.includes('musl') ? ['-dynamic'] : [];

/** libfuse3's include directory: pkg-config's, else the usual place. */
function fuseIncludes() {
  const pc = run('pkg-config', ['--cflags', 'fuse3']);
  if (pc.ok) return pc.out.split(/\s+/).filter(Boolean);
  if (existsSync('/usr/include/fuse3/fuse_lowlevel.h')) return ['-I/usr/include/fuse3'];
  return die('libfuse3 headers not found (install them: apt-get install pkg-config libfuse3-dev)');
}
const cflags = fuseIncludes();
// dlopen lives in libdl before glibc 2.34; -ldl is harmless after
const libs = ['-ldl', '-lpthread'];

let napiInclude;
try {
  napiInclude = createRequire(join(here, '..', 'package.json'))('node-api-headers').include_dir;
} catch {
  die('the npm package node-api-headers is not installed (run npm ci)');
}

const common = ['-O2', '-pthread', '-std=gnu11', '-Wall', '-Wextra', '-Wno-unused-parameter', '-DFUSE_USE_VERSION=312', '-D_FILE_OFFSET_BITS=64', ...target];
const all = readdirSync(srcDir).filter((f) => f.endsWith('.c')).sort();
mkdirSync(outDir, { recursive: true });

/** Compile to a temporary file beside `out`, then rename it into place (atomic for running users). */
function compile(out, args) {
  const tmp = `${out}.${process.pid}.tmp`;
  const cc = spawnSync(ccCmd, [...ccArgs, ...args, '-o', tmp, ...libs], { stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8' });
  if (cc.stderr) process.stderr.write(cc.stderr);
  if (cc.status !== 0) die(`${opts.cc} failed (exit ${cc.status}) building ${out}; see the messages above`);
  renameSync(tmp, out);
  process.stdout.write(`velo native build: wrote ${out}\n`);
}

compile(outFile, [
  ...common, '-fPIC', '-shared', '-fvisibility=hidden', '-DNAPI_VERSION=8',
  // Node-API functions resolve from the node binary at load time
  ...(opts.target ? ['-Wl,--allow-shlib-undefined', '-Wl,-z,undefs'] : []),
  `-I${napiInclude}`, ...cflags,
  ...all.filter((f) => f !== DAEMON_MAIN).map((f) => join(srcDir, f)),
]);
compile(daemonFile, [...common, ...exeFlags, ...cflags, ...[DAEMON_MAIN, ...DAEMON_SHARED].map((f) => join(srcDir, f))]);
// the launcher: plain libc, nothing else (it runs before every `velo uv`); its own directory, not in the addon
const launchSources = readdirSync(launchDir).filter((f) => f.endsWith('.c')).sort().map((f) => join(launchDir, f));
compile(launcherFile, [...common, ...launchSources]); // static with musl (zig's default): no loader to start
