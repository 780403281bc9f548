/**
 * The process that serves one mount. velo starts it detached
 * (`node mountServer.js [<mounts/<id>/mount.json>]`; without the argument
 * the record's path comes as the first IPC message, so velo can start the
 * process while it is still deciding what to mount); it loads the native
 * addon, mounts the tree's read-only FUSE view (at the record's `fuseAt`),
 * writes server.json, tells its parent over IPC, and then does nothing in
 * JavaScript: the addon's threads serve the filesystem and keep the process
 * alive.
 *
 * It ends on SIGTERM/SIGINT (velo umount), or when its FUSE view is
 * unmounted from outside. SIGUSR2 means "retire": a newer mount replaced
 * this one and velo did not wait — unmount, then delete this mount's
 * directory and upper layer too. Before it exits it lazily unmounts its overlay —
 * wherever a mount on top is an overlay whose lower layer is its FUSE view
 * (dest, or where velo parked it when a newer mount replaced it; never the
 * newer mount) — and then its FUSE view.
 *
 * Self-contained on purpose (node: built-ins only, erasable TypeScript): it
 * starts fast, and it runs from dist/ or straight from src/ under Node's
 * type stripping.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

interface Config {
  id: string;
  tree: string;
  home: string;
  dest: string;
  method: 'overlay' | 'fuse-ro';
  fuseAt: string;
  upper: string;
  addon: string;
  threads: number;
}

interface Handle {
  mountpoint: string;
}

interface Addon {
  mount(treePath: string, objectsDir: string, mountpoint: string, opts: { threads?: number; onExit?: () => void }): Handle;
  unmount(handle: Handle): boolean;
}

type Message = { type: 'ready'; pid: number } | { type: 'error'; code: string; message: string };

/** where the record is: argv[2], or the first IPC message (velo starts the server before it knows) */
let configPath = '';
let dir = '';
let serverJson = '';

function log(line: string): void {
  const text = `${new Date().toISOString()} [${process.pid}] ${line}\n`;
  try {
    if (dir) appendFileSync(join(dir, 'server.log'), text);
    else process.stderr.write(text);
  } catch {
    process.stderr.write(text);
  }
}

/** This process's start time in clock ticks since boot (/proc/self/stat field 22): with the pid, a unique name. */
function startTicks(): string {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
}

function send(msg: Message): void {
  if (!process.send) return;
  process.send(msg, undefined, {}, () => {
    /* the parent may be gone; nothing to do */
  });
}

/**
 * Where an overlay of ours (lower layer = our FUSE view) is the mount on
 * top: normally dest; after velo replaced us, the place it parked us.
 */
function ownOverlays(cfg: Config): string[] {
  const top = new Map<string, { fsType: string; opts: string }>();
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const dash = f.indexOf('-', 6);
    if (dash < 0) continue;
    const mp = f[4]!.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    top.set(mp, { fsType: f[dash + 1]!, opts: f[dash + 3] ?? '' });
  }
  return [...top].filter(([, t]) => t.fsType === 'overlay' && t.opts.split(',').includes(`lowerdir=${cfg.fuseAt}`)).map(([mp]) => mp);
}

let finished = false;

function finish(addon: Addon, handle: Handle | undefined, cfg: Config, why: string, retire = false): void {
  if (finished) return;
  finished = true;
  log(`stopping: ${why}`);
  if (cfg.method === 'overlay') {
    try {
      for (const mp of ownOverlays(cfg)) {
        const r = spawnSync('umount', ['-l', mp], { encoding: 'utf8' });
        if (r.status !== 0) log(`umount -l ${mp}: ${(r.stderr || r.error?.message || '').trim()}`);
      }
    } catch (err) {
      log(`cannot unmount the overlay: ${(err as Error).message}`);
    }
  }
  if (handle) {
    try {
      addon.unmount(handle);
    } catch (err) {
      log(`cannot unmount the FUSE view: ${(err as Error).message}`);
    }
  }
  try {
    const info = JSON.parse(readFileSync(serverJson, 'utf8')) as { pid?: number };
    if (info.pid === process.pid) rmSync(serverJson, { force: true });
  } catch {
    /* not there */
  }
  if (retire) {
    const upperRoot = dirname(cfg.upper);
    for (const d of upperRoot === dir ? [dir] : [dir, upperRoot]) {
      try {
        rmSync(d, { recursive: true, force: true, maxRetries: 2 });
      } catch (err) {
        log(`cannot remove ${d}: ${(err as Error).message}`);
      }
    }
  }
  process.exit(0);
}

function main(path: string): void {
  configPath = path;
  dir = dirname(configPath);
  serverJson = join(dir, 'server.json');
  const cfg = JSON.parse(readFileSync(configPath, 'utf8')) as Config;
  const addon = createRequire(import.meta.url)(cfg.addon) as Addon;
  let handle: Handle | undefined;
  process.on('SIGHUP', () => log('SIGHUP ignored'));
  const stop = (sig: string) => () => finish(addon, handle, cfg, sig);
  process.on('SIGTERM', stop('SIGTERM'));
  process.on('SIGINT', stop('SIGINT'));
  process.on('SIGUSR2', () => finish(addon, handle, cfg, 'replaced by a newer mount (SIGUSR2)', true));
  const treePath = join(cfg.home, 'trees', cfg.tree.slice(0, 2), cfg.tree.slice(2));
  try {
    handle = addon.mount(treePath, join(cfg.home, 'objects'), cfg.fuseAt, {
      threads: cfg.threads,
      onExit: () => finish(addon, undefined, cfg, 'the FUSE view was unmounted from outside'),
    });
  } catch (err) {
    const e = err as { code?: string; message?: string };
    log(`mount failed: ${e.code ?? 'ERROR'}: ${e.message ?? String(err)}`);
    send({ type: 'error', code: e.code ?? 'ERROR', message: e.message ?? String(err) });
    process.exitCode = 1;
    process.disconnect?.();
    return;
  }
  const tmp = `${serverJson}.${process.pid}`;
  writeFileSync(tmp, JSON.stringify({ pid: process.pid, ticks: startTicks(), id: cfg.id, fuseAt: cfg.fuseAt, started: Date.now() }) + '\n');
  renameSync(tmp, serverJson);
  log(`serving tree ${cfg.tree} at ${cfg.fuseAt} (${cfg.method}${cfg.method === 'overlay' ? ` → ${cfg.dest}` : ''})`);
  send({ type: 'ready', pid: process.pid });
}

if (process.argv[2]) main(process.argv[2]);
else {
  // started ahead of time: wait for the record; a parent that lets go first means "not needed"
  const onMessage = (msg: { type?: string; record?: string }): void => {
    if (msg?.type !== 'start' || typeof msg.record !== 'string') return;
    process.off('message', onMessage);
    process.off('disconnect', onDisconnect);
    main(msg.record);
  };
  const onDisconnect = (): void => process.exit(0);
  process.on('message', onMessage);
  process.on('disconnect', onDisconnect);
}
