/**
 * A resolution uv already made, remembered: when every requirement pins
 * one exact version (`name==X`) and the resolution names nothing the files
 * do not pin (always so for `pip sync`, which installs exactly the files'
 * lines), uv's answer depends only on the files' bytes, the options and
 * UV_* settings, the uv binary and the interpreter — and on which artifacts
 * the index has for those pinned versions. velo keeps uv's pylock.toml
 * under a key of all that (`uv-pipresolve:`), so the next venv of the same
 * files runs no uv at all. --refresh / --upgrade ask uv again.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { getKey, setKey } from '../store/keys.js';
import { putTree, readTree } from '../store/trees.js';
import { writeBufferToStore } from '../store/writeBufferToStore.js';
import type { Store } from '../store/store.js';
import { settingsFingerprint, stampOf } from './envState.js';
import type { PipMode } from './pipArgs.js';
import type { Requirement } from './requirementsFile.js';

export interface MemoInput {
  mode: PipMode;
  files: { path: string; text: string }[];
  /** the uv options that change the resolution */
  fingerprint: string[];
  env: NodeJS.ProcessEnv;
  uv: string;
  interpreterKey: string;
}

export function resolutionMemoKey(i: MemoInput): string {
  const uvStamp = stampOf(i.uv);
  const ident = JSON.stringify({
    layout: 'velo-uv-pipresolve-1',
    mode: i.mode,
    files: i.files.map((f) => [f.path, createHash('sha256').update(f.text).digest('hex')]),
    fingerprint: i.fingerprint,
    settings: settingsFingerprint(i.env),
    uv: [uvStamp.path, uvStamp.size, uvStamp.mtimeNs, uvStamp.ino],
    interpreter: i.interpreterKey,
  });
  return `uv-pipresolve:${createHash('sha256').update(ident).digest('hex').slice(0, 40)}`;
}

/** Every requirement pins one version: a resolution of them may be remembered. */
export function allPinned(reqs: Requirement[]): boolean {
  return reqs.length > 0 && reqs.every((r) => r.pinned);
}

/** uv's pylock.toml remembered under key, if any. */
export function loadResolution(store: Store, key: string): string | undefined {
  const tree = getKey(store, key);
  if (!tree) return undefined;
  try {
    const entry = readTree(store, tree).entries.find((e) => e.path === 'pylock.toml');
    return entry && entry.kind === 'file' ? readFileSync(store.objectPath(entry.digest, false), 'utf8') : undefined;
  } catch {
    return undefined;
  }
}

export function saveResolution(store: Store, key: string, pylock: string): void {
  const added = writeBufferToStore(store, Buffer.from(pylock), false);
  store.flushCounters();
  setKey(store, key, putTree(store, [{ path: 'pylock.toml', kind: 'file', size: added.size, digest: added.digest }]), { kind: 'uv-pipresolve' });
}
