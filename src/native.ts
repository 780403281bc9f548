/**
 * Loader for the native addon (native/, C against libfuse3). Everything that
 * uses it has a JavaScript fallback or a clear "unavailable" error, so velo
 * works (more slowly, and without mounts) where the addon was not built.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

/** What laying a tree out did, counted the same way by the native engine and the JavaScript link farm. */
export interface LinkFarmResult {
  files: number;
  dirs: number;
  symlinks: number;
  linked: number;
  reflinked: number;
  copied: number;
  fallbacks: number;
  bytes: number;
  /** indices of entries whose object failed the size/mtime check */
  tampered: number[];
}

/** The native engine reports what the JavaScript one does. */
export type NativeMaterializeResult = LinkFarmResult;

/** What mount() returns; pass it to unmount(). */
export interface NativeMountHandle {
  readonly mountpoint: string;
}

export interface NativeMountOptions {
  /** FUSE worker threads (default 2 × CPUs, within 4..16; at most 64) */
  threads?: number;
  /** mount option allow_other */
  allowOther?: boolean;
  /** libfuse debug output on stderr */
  debug?: boolean;
  /** called on the JS thread when the mount ends from outside (umount, connection abort) */
  onExit?: () => void;
}

export interface NativeAddon {
  materialize(tree: Buffer, objectsDir: string, dest: string, method: 'hardlink' | 'copy' | 'reflink', threads: number): Promise<NativeMaterializeResult>;
  /**
   * Serve a tree file read-only over FUSE at an existing directory; returns once mounted.
   * Throws with code FUSE_UNAVAILABLE, FUSE_MOUNT_FAILED, CORRUPT_TREE or an errno name.
   */
  mount?(treePath: string, objectsDir: string, mountpoint: string, opts?: NativeMountOptions): NativeMountHandle;
  /** Stop serving and lazily detach; false when it was no longer mounted. */
  unmount?(handle: NativeMountHandle): boolean;
  /**
   * Write in-memory objects into objects/ (names "ab/cdef…[x]"), each with O_TMPFILE + linkat: one status per name,
   * 0 an intact object was there, 1 created, 2 a damaged file holds the name, 3 O_TMPFILE unavailable (not written).
   * Throws with an errno name as code on a filesystem error. Absent from addons built before it.
   */
  writeObjects?(objectsDir: string, names: string[], data: Buffer[], exec: Uint8Array, mtime: number): Uint8Array;
  /** Cap glibc's malloc arenas for threads started later (mallopt M_ARENA_MAX); false where not glibc. Absent from addons built before it. */
  limitMallocArenas?(n: number): boolean;
  /**
   * One non-blocking exclusive flock(2) on an open file: true when taken, false when another open file holds it.
   * Closing the fd releases it. Absent from addons built before it.
   */
  tryFlock?(fd: number): boolean;
  version?: string;
  /** libfuse3's version; undefined when libfuse3.so.3 cannot be loaded (it is opened with dlopen) */
  fuseVersion?: string;
  /** why libfuse3 cannot be loaded; undefined when it can */
  fuseError?: string;
}

/**
 * velo's own package root: the nearest directory holding a package.json
 * above this file (src/native.ts, dist/src/native.js, or a chunk of
 * dist/bundle/), in a clone or an npm install alike.
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  return dir;
}

let cached: NativeAddon | null | undefined;
let loadError: string | undefined;

/**
 * The npm packages that carry the prebuilt addon and velo-mountd for this
 * machine, most likely first: `@velo-rift/<os>-<cpu>-<gnu|musl>` (scripts/pack.sh
 * builds them; npm installs the one whose os/cpu/libc fields match).
 */
export function platformPackages(platform: string = process.platform, arch: string = process.arch): string[] {
  if (platform !== 'linux') return [`@velo-rift/${platform}-${arch}`];
  return [`@velo-rift/linux-${arch}-gnu`, `@velo-rift/linux-${arch}-musl`];
}

/** The prebuilt addon of the installed platform package, if one is installed. */
function prebuiltAddonPath(): string | undefined {
  const require = createRequire(import.meta.url);
  for (const name of platformPackages()) {
    try {
      return require.resolve(`${name}/velo_native.node`);
    } catch {
      /* not installed: the next candidate */
    }
  }
  return undefined;
}

/**
 * Where the addon is: $VELO_NATIVE_ADDON; else native/build/ of a clone when
 * it was built there (a developer's build wins over a prebuilt); else the
 * platform package's prebuilt (`npm i -g velo-rift`); else native/build/
 * (reported as not built).
 */
export function nativeAddonPath(): string {
  if (process.env.VELO_NATIVE_ADDON) return process.env.VELO_NATIVE_ADDON;
  const built = join(packageRoot(), 'native', 'build', 'velo_native.node');
  if (existsSync(built)) return built;
  return prebuiltAddonPath() ?? built;
}

export function loadNative(): NativeAddon | undefined {
  if (cached !== undefined) return cached ?? undefined;
  if (process.env.VELO_NO_NATIVE === '1') {
    loadError = 'disabled by VELO_NO_NATIVE=1';
    cached = null;
    return undefined;
  }
  const path = nativeAddonPath();
  try {
    cached = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (err) {
    loadError = existsSync(path)
      ? (err as Error).message
      : `no prebuilt package (${platformPackages().join(' or ')}) is installed and ${path} is not built (run npm run build:native)`;
    cached = null;
  }
  return cached ?? undefined;
}

export function nativeLoadError(): string | undefined {
  loadNative();
  return loadError;
}
