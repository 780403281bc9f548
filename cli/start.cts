#!/usr/bin/env node
/**
 * The command's first file (npm's `velo` bin): CommonJS, because Node starts
 * a CommonJS file without setting up its ES module loader — about 5 ms of
 * CPU on a 2-core machine, the whole budget of `velo --version`. It turns on
 * Node's compile cache, answers --version itself, and hands everything else
 * to velo.js (ESM, loaded through the cache).
 */
import fs = require('node:fs');
import nodeModule = require('node:module');

/** Set by the bundler (scripts/bundle.mjs); unset when running tsc's output. */
declare const VELO_VERSION: string | undefined;

nodeModule.enableCompileCache?.();
const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
  const version = typeof VELO_VERSION === 'string' ? VELO_VERSION : (require('../../package.json') as { version: string }).version;
  fs.writeSync(1, `${version}\n`);
} else {
  void import('./velo.js');
}
