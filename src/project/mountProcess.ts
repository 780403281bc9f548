/**
 * Starting and stopping the detached server process of a mount
 * (mountServer.ts), and telling whether it is still the one serving.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VeloError } from '../errors.js';
import { packageRoot } from '../native.js';
import { processAlive } from '../store/lock.js';
import { mountDir, mountsRoot, readServerInfo, type MountRecord } from './mountRecords.js';

/** How long a server may take to mount before velo gives up on it. */
const START_TIMEOUT_MS = 20_000;
/** How long a server may take to unmount and exit after SIGTERM. */
const STOP_TIMEOUT_MS = 5_000;

/** dist/src/project/mountServer.js when built; else the source, run with Node's type stripping. */
export function serverScript(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [
    join(here, 'mountServer.js'),
    join(packageRoot(), 'dist', 'src', 'project', 'mountServer.js'),
    join(here, 'mountServer.ts'),
  ];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new VeloError('FUSE_UNAVAILABLE', `the mount server script is missing (looked for ${candidates[0]}); run npm run build`);
  return found;
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

/** A server process started ahead of time, waiting to be told which mount to serve. */
export interface PendingServer {
  /** hand it the record (already written) and wait until its FUSE view is mounted */
  start(record: MountRecord): Promise<StartedServer>;
  /** not needed after all: it exits */
  abort(): void;
}

/**
 * Start a server process now — Node's start-up is most of a mount's cost,
 * so velo starts it first and decides what to mount meanwhile. Its output
 * goes to $VELO_HOME/mounts/servers.log until it knows its own directory.
 */
export function spawnServer(home: string): PendingServer {
  mkdirSync(mountsRoot(home), { recursive: true });
  const logFd = openSync(join(mountsRoot(home), 'servers.log'), 'a', 0o644);
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // a test runner's or debugger's hooks have no business in a server
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [serverScript()], { detached: true, cwd: '/', env, stdio: ['ignore', logFd, logFd, 'ipc'] });
  } finally {
    closeSync(logFd);
  }
  let spawnError: Error | undefined;
  let exited: string | undefined;
  child.on('error', (err) => (spawnError = err));
  child.on('exit', (code, signal) => (exited = signal ?? `code ${code}`));
  const letGo = (): void => {
    child.removeAllListeners('message');
    child.removeAllListeners('exit');
    child.removeAllListeners('error');
    child.on('error', () => {});
    if (child.connected) child.disconnect();
    child.unref();
  };
  return {
    abort() {
      letGo(); // a waiting server exits when its parent lets go
    },
    start(record) {
      const log = join(mountDir(record.home, record.id), 'server.log');
      return new Promise<StartedServer>((resolve, reject) => {
        let done = false;
        const settle = (err: Error | undefined, value?: StartedServer): void => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          letGo();
          if (err) reject(err);
          else resolve(value!);
        };
        if (spawnError) return settle(new ServerStartError('SPAWN', `cannot start the mount server: ${spawnError.message}`));
        if (exited) return settle(new ServerStartError('EXITED', `the mount server exited (${exited}) before mounting; see ${join(mountsRoot(home), 'servers.log')}`));
        const timer = setTimeout(() => {
          try {
            child.kill('SIGKILL');
          } catch {
            /* gone */
          }
          settle(new ServerStartError('TIMEOUT', `the mount server did not report within ${START_TIMEOUT_MS / 1000} s (log: ${log})`));
        }, START_TIMEOUT_MS);
        child.on('message', (msg: { type?: string; pid?: number; code?: string; message?: string }) => {
          if (msg.type === 'ready') settle(undefined, { pid: msg.pid ?? child.pid! });
          else if (msg.type === 'error') settle(new ServerStartError(msg.code ?? 'ERROR', msg.message ?? 'the mount server failed'));
        });
        child.on('error', (err) => settle(new ServerStartError('SPAWN', `cannot start the mount server: ${err.message}`)));
        child.on('exit', (code, signal) => settle(new ServerStartError('EXITED', `the mount server exited (${signal ?? `code ${code}`}) before mounting; see ${log}`)));
        child.send({ type: 'start', record: recordPath(record) }, (err) => {
          if (err) settle(new ServerStartError('EXITED', `the mount server went away before mounting: ${err.message}`));
        });
      });
    },
  };
}

/**
 * Start the server of a recorded mount and wait until its FUSE view is
 * mounted. Throws ServerStartError with the addon's error code
 * (FUSE_UNAVAILABLE, FUSE_MOUNT_FAILED, CORRUPT_TREE, ENOENT, …).
 */
export function startServer(record: MountRecord): Promise<StartedServer> {
  return spawnServer(record.home).start(record);
}

/**
 * Alive and not a zombie: a server this very process started and that has
 * exited stays a zombie until our event loop reaps it, which a synchronous
 * wait never lets happen.
 */
/** A process's start time in clock ticks since boot (/proc/<pid>/stat field 22). */
export function startTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

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
