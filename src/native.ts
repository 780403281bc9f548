/**
 * Loader for the native addon (native/, C against libfuse3). Everything that
 * uses it has a JavaScript fallback or a clear "unavailable" error, so velo
 * works (more slowly, and without mounts) where the addon was not built.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export interface NativeMaterializeResult {
  files: number;
  dirs: number;
  symlinks: number;
  linked: number;
  reflinked: number;
  copied: number;
  fallbacks: number;
  tampered: number[];
  bytes: number;
}

export interface NativeMountHandle {
  readonly mountpoint?: string;
}

export interface NativeAddon {
  materialize(tree: Buffer, objectsDir: string, dest: string, method: 'hardlink' | 'copy' | 'reflink', threads: number): Promise<NativeMaterializeResult>;
  mount?(treePath: string, objectsDir: string, mountpoint: string, opts: { threads?: number; allowOther?: boolean; debug?: boolean }): NativeMountHandle;
  unmount?(handle: NativeMountHandle): void;
}

/** The repository root: two levels above dist/src/native.js or src/native.ts. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'native'))) return dir;
    dir = dirname(dir);
  }
  return dir;
}

let cached: NativeAddon | null | undefined;
let loadError: string | undefined;

export function nativeAddonPath(): string {
  return process.env.VELO_NATIVE_ADDON || join(packageRoot(), 'native', 'build', 'velo_native.node');
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
    loadError = existsSync(path) ? (err as Error).message : `${path} is not built (run npm run build:native)`;
    cached = null;
  }
  return cached ?? undefined;
}

export function nativeLoadError(): string | undefined {
  loadNative();
  return loadError;
}
