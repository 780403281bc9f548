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
    layout: 'velo-uv-pipresolve-2',
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

/** uv's answers: the resolution for this interpreter, and every artifact of its versions (pipResolve.ts). */
export interface Resolution {
  pylock: string;
  allArtifacts?: string;
}

const FILES = { pylock: 'pylock.toml', allArtifacts: 'pylock.all.toml' } as const;

/** The resolution remembered under key, if any. */
export function loadResolution(store: Store, key: string): Resolution | undefined {
  const tree = getKey(store, key);
  if (!tree) return undefined;
  try {
    const entries = readTree(store, tree).entries;
    const read = (path: string): string | undefined => {
      const e = entries.find((x) => x.path === path);
      return e && e.kind === 'file' ? readFileSync(store.objectPath(e.digest, false), 'utf8') : undefined;
    };
    const pylock = read(FILES.pylock);
    const allArtifacts = read(FILES.allArtifacts);
    return pylock === undefined ? undefined : { pylock, ...(allArtifacts !== undefined ? { allArtifacts } : {}) };
  } catch {
    return undefined;
  }
}

export function saveResolution(store: Store, key: string, r: Resolution): void {
  const entries = (Object.keys(FILES) as (keyof typeof FILES)[]).flatMap((k) => {
    const text = r[k];
    if (text === undefined) return [];
    const added = writeBufferToStore(store, Buffer.from(text), false);
    return [{ path: FILES[k], kind: 'file' as const, size: added.size, digest: added.digest }];
  });
  store.flushCounters();
  setKey(store, key, putTree(store, entries), { kind: 'uv-pipresolve' });
}
