/**
 * Can this machine mount? FUSE needs Linux, the native addon and its mount
 * server (velo-mountd), a usable /dev/fuse, and (unprivileged) fusermount3. When it cannot, velo says why
 * in one line (FUSE_UNAVAILABLE) and callers fall back to linking.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { VeloError } from '../errors.js';
import { loadNative, nativeLoadError } from '../native.js';
import { SERVER_NAME, serverBinary, type ServerStartError } from './mountProcess.js';

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((d) => d && existsSync(join(d, cmd)));
}

/** Why FUSE cannot be used here, or undefined when it can. */
export function fuseUnavailableReason(): string | undefined {
  if (process.platform !== 'linux') return `mounts need Linux (this is ${process.platform})`;
  const addon = loadNative();
  if (!addon) return `the native addon is not available (${nativeLoadError() ?? 'not built'})`;
  if (typeof addon.mount !== 'function') return 'the native addon was built without mount support';
  // libfuse3 is opened with dlopen: a machine without it runs velo with link projection
  if (addon.fuseError) return `${addon.fuseError} (Debian/Ubuntu: apt-get install fuse3; Fedora: dnf install fuse3; Alpine: apk add fuse3)`;
  if (!serverBinary()) return `the mount server ${SERVER_NAME} is not built (run npm run build:native)`;
  try {
    // fusermount3 opens /dev/fuse with the user's own rights too (it drops its setuid privileges for that)
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch (err) {
    return `cannot open /dev/fuse (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
  }
  if (process.getuid?.() !== 0 && !onPath('fusermount3')) return 'fusermount3 is not installed (Debian: apt-get install fuse3)';
  return undefined;
}

export function requireFuse(): void {
  const why = fuseUnavailableReason();
  if (why) throw new VeloError('FUSE_UNAVAILABLE', `FUSE is unavailable: ${why}`, { hint: 'use the link projection (--projection link)' });
}

export function fromServerError(err: unknown, dest: string): VeloError {
  if (err instanceof VeloError) return err;
  const e = err as ServerStartError;
  const msg = `cannot mount at ${dest}: ${e.message}`;
  if (e.code === 'FUSE_UNAVAILABLE') return new VeloError('FUSE_UNAVAILABLE', `FUSE is unavailable: ${e.message}`, { hint: 'use the link projection (--projection link)' });
  if (e.code === 'FUSE_MOUNT_FAILED' && /permit|permission|fusermount|EPERM|EACCES/i.test(e.message)) {
    return new VeloError('FUSE_UNAVAILABLE', `FUSE is unavailable: ${e.message}`, { hint: 'use the link projection (--projection link)' });
  }
  if (e.code === 'CORRUPT_TREE') return new VeloError('CORRUPT_TREE', msg);
  if (e.code === 'ENOENT') return new VeloError('NOT_FOUND', msg);
  return new VeloError('IO', msg, { cause: err });
}
