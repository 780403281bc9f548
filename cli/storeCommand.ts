/**
 * velo store ingest|materialize|ls — the store's own verbs.
 */
import { resolve } from 'node:path';
import { enclosingRoot } from '../src/projection/containment.js';
import { VeloError } from '../src/errors.js';
import { LINK_METHODS, type LinkMethod } from '../src/config.js';
import { ingestDir } from '../src/store/addFilesFromDir.js';
import { readTree } from '../src/store/trees.js';
import { registerProject } from '../src/store/keys.js';
import { withLease } from '../src/store/lock.js';
import { materialize } from '../src/projection/materialize.js';
import { flag, need, parse, str } from './args.js';
import { config } from './context.js';
import { openStore } from './storeContext.js';
import { formatBytes, formatMs, json, out, type Io } from './io.js';

const USAGE = `Usage: velo store <command>

Commands:
  ingest <dir> [--mtimes] [--json]         put a directory in the store; prints its tree digest
  materialize <tree> <dest> [--method M]   lay a tree out at dest (atomically replacing it)
             [--no-register] [--json]      M: auto (default), reflink, hardlink, copy
  ls <tree> [--long] [--json]              list a tree's entries

Environment: VELO_HOME (the store, default ~/.local/share/velo), VELO_METHOD.`;

export async function run(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    out(io, USAGE);
    return sub === undefined ? 2 : 0;
  }
  if (sub === 'ingest') return ingest(rest, io);
  if (sub === 'materialize') return materializeCmd(rest, io);
  if (sub === 'ls') return ls(rest, io);
  throw new VeloError('USAGE', `unknown store command: ${sub}\n\n${USAGE}`);
}

const INGEST_USAGE = `Usage: velo store ingest <dir> [--mtimes] [--json]

Puts every file of <dir> in the store (once: identical files are stored once)
and prints the digest of the tree that describes the directory.

  --mtimes   record file and directory mtimes in the tree
  --json     print {tree, files, dirs, symlinks, bytes, newObjects, newBytes, ms}`;

async function ingest(argv: string[], io: Io): Promise<number> {
  const p = parse(argv, { mtimes: { type: 'boolean' }, json: { type: 'boolean' } }, INGEST_USAGE);
  if (p.help) return out(io, INGEST_USAGE), 0;
  const [dir] = need(p, 1, INGEST_USAGE);
  const store = openStore(io);
  try {
    const t0 = performance.now();
    const r = await withLease(store, 'install', () => ingestDir(store, resolve(io.cwd, dir!), { mtimes: flag(p, 'mtimes'), threads: config(io).threads }));
    const ms = performance.now() - t0;
    if (flag(p, 'json')) json(io, { ...r, ms: Math.round(ms) });
    else {
      out(io, r.tree);
      io.stderr.write(
        `ingested ${r.files} files, ${r.dirs} dirs, ${r.symlinks} symlinks (${formatBytes(r.bytes)}); ${r.newObjects} new objects (${formatBytes(r.newBytes)}) in ${formatMs(ms)}\n`,
      );
    }
    return 0;
  } finally {
    store.close();
  }
}

const MATERIALIZE_USAGE = `Usage: velo store materialize <tree> <dest> [--method auto|reflink|hardlink|copy] [--no-register] [--json]

Lays the tree out at <dest>. The new tree is built beside <dest> and swapped
in; if anything fails, <dest> is left as it was. <dest> is registered as a
project (a GC root) unless --no-register is given.`;

async function materializeCmd(argv: string[], io: Io): Promise<number> {
  const p = parse(argv, { method: { type: 'string' }, 'no-register': { type: 'boolean' }, json: { type: 'boolean' } }, MATERIALIZE_USAGE);
  if (p.help) return out(io, MATERIALIZE_USAGE), 0;
  const [tree, dest] = need(p, 2, MATERIALIZE_USAGE);
  const method = (str(p, 'method') ?? config(io).method) as LinkMethod;
  if (!LINK_METHODS.includes(method)) throw new VeloError('USAGE', `--method must be one of ${LINK_METHODS.join(', ')}`);
  const store = openStore(io);
  try {
    const t0 = performance.now();
    const abs = resolve(io.cwd, dest!);
    const r = await withLease(store, 'install', async () => {
      const result = await materialize(store, tree!, abs, { within: enclosingRoot(abs, undefined), method, threads: config(io).threads, backgroundRemoval: true });
      if (!flag(p, 'no-register')) {
        registerProject(store, { path: abs, ecosystem: 'tree', tree: tree!, method: result.method, logicalBytes: result.logicalBytes, files: result.files });
      }
      return result;
    });
    const ms = performance.now() - t0;
    if (flag(p, 'json')) json(io, { ...r, ms: Math.round(ms) });
    else {
      out(
        io,
        `materialized ${r.files} files, ${r.dirs} dirs, ${r.symlinks} symlinks at ${abs} by ${r.method}` +
          `${r.fallbacks ? ` (${r.fallbacks} fell back to copy)` : ''} in ${formatMs(ms)}`,
      );
    }
    return 0;
  } finally {
    store.close();
  }
}

const LS_USAGE = `Usage: velo store ls <tree> [--long] [--json]

Lists the entries of a tree: kind, mode, size, path (and digest or target with --long).`;

async function ls(argv: string[], io: Io): Promise<number> {
  const p = parse(argv, { long: { type: 'boolean', short: 'l' }, json: { type: 'boolean' } }, LS_USAGE);
  if (p.help) return out(io, LS_USAGE), 0;
  const [tree] = need(p, 1, LS_USAGE);
  const store = openStore(io);
  try {
    const parsed = readTree(store, tree!);
    const entries = parsed.entries.slice(1);
    if (flag(p, 'json')) {
      json(io, {
        tree,
        hasMtimes: parsed.hasMtimes,
        logicalSize: parsed.logicalSize,
        entries: entries.map((e) => ({
          path: e.path,
          kind: e.kind,
          ...(e.kind === 'file' ? { exec: e.exec, size: e.size, digest: e.digest } : {}),
          ...(e.kind === 'symlink' ? { target: e.target } : {}),
          ...(parsed.hasMtimes ? { mtimeNs: e.mtimeNs.toString() } : {}),
        })),
      });
      return 0;
    }
    const lines: string[] = [];
    for (const e of entries) {
      const mode = e.kind === 'dir' ? 'drwxr-xr-x' : e.kind === 'symlink' ? 'lrwxrwxrwx' : e.exec ? '-rwxr-xr-x' : '-rw-r--r--';
      const size = String(e.kind === 'file' ? e.size : 0).padStart(10);
      let line = `${mode} ${size} ${e.path}`;
      if (e.kind === 'symlink') line += ` -> ${e.target}`;
      if (flag(p, 'long') && e.kind === 'file') line += `  ${e.digest}`;
      lines.push(line);
    }
    out(io, lines.join('\n'));
    return 0;
  } finally {
    store.close();
  }
}
