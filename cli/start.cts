#!/usr/bin/env node
/**
 * The command's first file (npm's `velo` bin): CommonJS, because Node starts
 * a CommonJS file without setting up its ES module loader — about 5 ms of
 * CPU on a 2-core machine, the whole budget of `velo --version`. It turns on
 * Node's compile cache, answers --version itself, answers a no-op
 * `velo npm ci` / `velo npm install` itself (npmNoop.ts, bundled into this
 * file as CommonJS by scripts/bundle.mjs: the stat-stamp check without the
 * ES module graph), and hands everything else to velo.js (ESM, loaded
 * through the cache).
 */
import fs = require('node:fs');
import nodeModule = require('node:module');

/** Set by the bundler (scripts/bundle.mjs); unset when running tsc's output. */
declare const VELO_VERSION: string | undefined;

const version = (): string => (typeof VELO_VERSION === 'string' ? VELO_VERSION : (require('../../package.json') as { version: string }).version);

nodeModule.enableCompileCache?.();
const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
  fs.writeSync(1, `${version()}\n`);
} else {
  const code = argv[0] === 'npm' ? npmNoop(argv.slice(1)) : undefined;
  if (code === undefined) void import('./velo.js');
  else process.exitCode = code;
}

/** Loaded (and, in the bundle, initialised) only for `velo npm`: the other commands pay nothing for it. */
function npmNoop(npmArgv: string[]): number | undefined {
  const { nodeTooOld } = require('./nodeVersion.js') as typeof import('./nodeVersion.js');
  if (nodeTooOld()) return undefined; // velo.js says so
  const { npmNoopFast } = require('./npmNoop.js') as typeof import('./npmNoop.js');
  const { processIo } = require('./io.js') as typeof import('./io.js');
  return npmNoopFast(npmArgv, processIo(), version());
}
