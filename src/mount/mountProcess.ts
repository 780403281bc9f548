/**
 * Starting and stopping the detached server process of a mount —
 * velo-mountd (native/src/mountd.c, built next to the addon), a small C
 * program, so a mount costs no Node start-up — and telling whether it is
 * still the one serving.
 *
 * velo starts it with the record's paths on its command line; it mounts the
 * FUSE view (and, when asked, the overlay at dest: one mount(2) rather than
 * velo running mount(8); with method fuse-rw the view is writable and the
 * server copies writes up into the record's upper dir), writes server.json
 * and reports one line on stdout:
 * `ready <pid>` or `error <CODE> <message>`. Its log is mounts/<id>/server.log.
 * A tree with a lazy record (objects still in a remote: src/remote/lazyRecord.ts)
 * gets --fetch-node/--fetch-script: the server starts the object fetcher
 * (src/remote/lazyFetcher.ts) as its child, and a repair restarts both.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { nativeAddonPath } from '../native.js';
import { treePathIn } from '../store/layout.js';
import { processAlive } from '../store/lock.js';
import { mountDir, readServerInfo, type MountRecord } from './mountRecords.js';
import { hasLazyRecord, lazyFetcherScript } from '../remote/lazyRecord.js';

/** How long a server may take to mount before velo gives up on it. */
const START_TIMEOUT_MS = 20_000;
/** How long a server may take to unmount and exit after SIGTERM. */
const STOP_TIMEOUT_MS = 5_000;

export const SERVER_NAME = 'velo-mountd';

/**
 * Where velo-mountd is: $VELO_MOUNTD, else beside the native addon
 * (native/build/ of a checkout, found from dist/ and from the sources alike;
 * the prebuilt platform package @velo-rift/<platform> of an npm install;
 * beside $VELO_NATIVE_ADDON when that is set). Undefined when it is not built.
 */
export function serverBinary(): string | undefined {
  const path = process.env.VELO_MOUNTD || join(dirname(nativeAddonPath()), SERVER_NAME);
  return existsSync(path) ? path : undefined;
}

function recordPath(record: MountRecord): string {
  return join(mountDir(record.home, record.id), 'mount.json');
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export interface StartedServer {
  pid: number;
}

export class ServerStartError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

export interface StartOptions {
  /** the server also mounts the record's overlay at dest (a directory with no mount of velo's on it) */
  overlay?: boolean;
}

/** velo-mountd's command line for a record. */
export function serverArgs(record: MountRecord, options: StartOptions = {}): string[] {
  const overlay = options.overlay && record.method === 'overlay' ? ['--overlay-upper', record.upper, '--overlay-work', record.work] : [];
  const copyUp = record.method === 'fuse-rw' ? ['--upper', record.upper, '--work', record.work] : [];
  // a tree filled lazily from a remote: the server starts the object fetcher with it (lazyRecord.ts)
  const script = hasLazyRecord(record.home, record.tree) ? lazyFetcherScript() : undefined;
  const fetcher = script ? ['--fetch-node', process.execPath, '--fetch-script', script] : [];
  return [
    '--dir', mountDir(record.home, record.id),
    '--id', record.id,
    '--tree', treePathIn(record.home, record.tree),
    '--objects', join(record.home, 'objects'),
    '--fuse-at', record.fuseAt,
    '--method', record.method,
    '--upper-root', dirname(record.upper),
    '--threads', String(record.threads > 0 ? record.threads : 0),
    '--tree-id', record.tree,
    '--dest', record.dest,
    ...overlay,
    ...copyUp,
    ...fetcher,
  ];
}

/**
 * Start the server of a recorded mount (its directory exists) and wait until
 * its FUSE view is mounted. Throws ServerStartError with the server's error
 * code (FUSE_UNAVAILABLE, FUSE_MOUNT_FAILED, CORRUPT_TREE, ENOENT, …;
 * OVERLAY_FAILED when it was asked to mount the overlay and overlayfs refused).
 */
export function startServer(record: MountRecord, options: StartOptions = {}): Promise<StartedServer> {
  const bin = serverBinary();
  const log = join(mountDir(record.home, record.id), 'server.log');
  if (!bin) return Promise.reject(new ServerStartError('FUSE_UNAVAILABLE', `the mount server ${SERVER_NAME} is not built (run npm run build:native)`));
  const logFd = openSync(log, 'a', 0o644);
  return new Promise<StartedServer>((resolve, reject) => {
    let done = false;
    let out = '';
    const child = (() => {
      try {
        return spawn(bin, serverArgs(record, options), { detached: true, cwd: '/', stdio: ['ignore', 'pipe', logFd] });
      } finally {
        closeSync(logFd);
      }
    })();
    const settle = (err: Error | undefined, value?: StartedServer): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.stdout?.removeAllListeners('data');
      child.stdout?.destroy();
      child.removeAllListeners('exit');
      child.removeAllListeners('error');
      child.on('error', () => {});
      child.unref();
      if (err) reject(err);
      else resolve(value!);
    };
    const timer = setTimeout(() => {
      try {
        child.kill('SIGKILL');
      } catch {
        /* gone */
      }
      settle(new ServerStartError('TIMEOUT', `the mount server did not report within ${START_TIMEOUT_MS / 1000} s (log: ${log})`));
    }, START_TIMEOUT_MS);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      out += chunk;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      const line = out.slice(0, nl);
      const ready = /^ready (\d+)$/.exec(line);
      const error = /^error (\S+) ?(.*)$/.exec(line);
      if (ready) settle(undefined, { pid: Number(ready[1]) });
      else if (error) settle(new ServerStartError(error[1]!, error[2] || 'the mount server failed'));
      else settle(new ServerStartError('EXITED', `the mount server said ${JSON.stringify(line)}; see ${log}`));
    });
    child.on('error', (err) => settle(new ServerStartError('SPAWN', `cannot start the mount server: ${err.message}`)));
    child.on('exit', (code, signal) => settle(new ServerStartError('EXITED', `the mount server exited (${signal ?? `code ${code}`}) before mounting; see ${log}`)));
  });
}

/** A process's start time in clock ticks since boot (/proc/<pid>/stat field 22). */
export function startTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/**
 * Alive and not a zombie: a server this very process started and that has
 * exited stays a zombie until our event loop reaps it, which a synchronous
 * wait never lets happen.
 */
export function running(pid: number): boolean {
  if (!processAlive(pid)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** The server process of a record when it is alive and really is that server (not a reused pid). */
export function livePid(record: MountRecord): number | undefined {
  const info = readServerInfo(record);
  if (!info || !running(info.pid)) return undefined;
  // the same process, not a later one that got the pid: its start time since boot matches
  return startTicks(info.pid) === info.ticks ? info.pid : undefined;
}

/**
 * Hand a replaced mount to its own server to finish (SIGUSR2): it unmounts
 * its overlay and FUSE view and deletes its directory, while velo goes on.
 * The record is removed first, so the mount is no longer listed. Returns
 * false when there was no live server to ask (the caller tears down itself).
 */
export function retireServer(record: MountRecord): boolean {
  const pid = livePid(record);
  if (pid === undefined) return false;
  try {
    unlinkSync(recordPath(record));
    process.kill(pid, 'SIGUSR2');
    return true;
  } catch {
    return false;
  }
}

/**
 * Ask a server to unmount and exit (SIGTERM); after STOP_TIMEOUT_MS kill it.
 * Returns true when it exited by itself.
 */
export function stopServer(pid: number): boolean {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return true;
  }
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  let wait = 1;
  while (Date.now() < deadline) {
    if (!running(pid)) return true;
    sleepSync(wait);
    wait = Math.min(wait * 2, 20);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  return false;
}
