#!/usr/bin/env node
/**
 * The velo command: dispatch to one module per command, loaded lazily so
 * the fast paths (an unchanged project) load almost nothing.
 */
import module, { createRequire } from 'node:module';
import type { Io } from './io.js';
import { nodeTooOld } from './nodeVersion.js';

// velo's own modules are compiled once and the code cached (Node >= 22.1):
// io.js and each command load after this, lazily, so they all benefit (the
// installed bin, start.cjs, turned it on before loading this file)
module.enableCompileCache?.();

type Runner = (argv: string[], io: Io) => Promise<number>;

const COMMANDS: Record<string, { summary: string; load: () => Promise<Runner> }> = {
  npm: { summary: 'npm ci / install through the store; other npm commands pass through', load: async () => (await import('./npmCommand.js')).run },
  cargo: { summary: 'cargo build|check|clippy|run|test with target/ restored from and stored in the store', load: async () => (await import('./cargoCommand.js')).run },
  uv: { summary: 'uv sync and uv pip sync|install -r through the store (velo uv sync [args], velo uv pip …)', load: async () => (await import('./uvCommand.js')).runUv },
  store: { summary: 'store ingest|materialize|ls: the store\'s own verbs', load: async () => (await import('./storeCommand.js')).run },
  status: { summary: 'what the store holds and saves', load: async () => (await import('./statusCommand.js')).run },
  verify: { summary: 're-hash the store; --repair fixes what it can', load: async () => (await import('./verifyCommand.js')).run },
  gc: { summary: 'delete what no registered project uses', load: async () => (await import('./gcCommand.js')).run },
  init: { summary: 'set a project up: detect its ecosystems, write velo.json, register it', load: async () => (await import('./initCommand.js')).run },
  run: { summary: 'bring dependencies up to date, then run a command in the project environment', load: async () => (await import('./runCommand.js')).run },
  mount: { summary: 'mount a tree or a project\'s tree at a directory (FUSE view; writes go to an overlay or copy-up layer)', load: async () => (await import('./mountCommand.js')).runMount },
  umount: { summary: 'unmount what velo mounted (--all: everything)', load: async () => (await import('./mountCommand.js')).runUmount },
  mounts: { summary: 'list mounts; repair stale ones', load: async () => (await import('./mountCommand.js')).runMounts },
  remote: { summary: 'the shared store on S3: remote status | remote gc', load: async () => (await import('./remoteCommand.js')).run },
  dashboard: { summary: 'what the store holds and saves, live on the terminal (--json too)', load: async () => (await import('./dashboardCommand.js')).run },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `velo — dependency trees from a global content-addressed store

Usage: velo <command> [args]   (velo <command> --help for details)

Commands:
${lines.join('\n')}

Configuration: VELO_HOME (store, default ~/.local/share/velo), VELO_METHOD
(auto|reflink|hardlink|copy), VELO_PROJECTION (link|mount), VELO_THREADS,
VELO_REMOTE (s3://bucket/prefix: a shared store, with AWS_* credentials;
VELO_REMOTE_MODE=read never writes); or the same keys in
~/.config/velo/config.json.`;
}

/** Set by the bundler (scripts/bundle.mjs); unset when running tsc's output. */
declare const VELO_VERSION: string | undefined;

function version(): string {
  if (typeof VELO_VERSION === 'string') return VELO_VERSION;
  const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };
  return pkg.version;
}

export async function main(argv: string[], io: Io): Promise<number> {
  const { out, renderError } = await import('./io.js');
  const [cmd, ...rest] = argv;
  if (nodeTooOld()) {
    io.stderr.write(`velo: Node ${process.versions.node} is too old; velo needs Node ^22.22 or >= 24.15 (see README: Install)\n`);
    return 69;
  }
  const asJson = rest.includes('--json');
  try {
    if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
      out(io, usage());
      return cmd === undefined ? 2 : 0;
    }
    if (cmd === '--version' || cmd === '-v') {
      out(io, version());
      return 0;
    }
    const entry = COMMANDS[cmd];
    if (!entry) {
      io.stderr.write(`velo: unknown command "${cmd}"\n\n${usage()}\n`);
      return 2;
    }
    return await (await entry.load())(rest, io);
  } catch (e) {
    return renderError(io, e, asJson);
  }
}

const { processIo, renderError } = await import('./io.js');
const io = processIo();
main(process.argv.slice(2), io).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.exitCode = renderError(io, e);
  },
);
