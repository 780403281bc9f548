/**
 * target/.velo/state.json: what velo knows about a target dir it made —
 * the snapshot it was restored from or stored as, under which key, and a
 * signature of every file's size and mtime when velo last saw it. The no-op
 * path reads only this file, so this module loads nothing but node:fs.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const STATE_DIR = '.velo';
export const STATE_FILE = 'state.json';
const STATE_VERSION = 1;

export interface TargetState {
  version: 1;
  /** the workspace root the target belongs to */
  project: string;
  /** the snapshot key id the target was last built or restored under */
  key: string;
  /** the snapshot tree the target descends from (null: adopted, never snapshotted) */
  snapshot: string | null;
  /** its name in the key index */
  snapshotName: string | null;
  /** when that snapshot was made (ms since the epoch) */
  snapshotCreated: number;
  /** targetSignature() of the dir when velo last restored, stored or ran cargo on it */
  signature: string;
  /** toolchainStamp() when rustcVerbose was asked, and the answer: the no-op path reuses it */
  rustcStamp?: string | undefined;
  rustcVerbose?: string | undefined;
  /** keyMaterial() the key id was computed from: equal material, same key, no hashing */
  keyMaterial?: string | undefined;
  /**
   * a mounted target: the tree it shows (the snapshot as checked and
   * re-stamped for this checkout, without this state file). Storing after a
   * build reuses its digests for the files cargo left alone.
   */
  viewTree?: string | undefined;
  updated: number;
}

export function statePath(targetDir: string): string {
  return join(targetDir, STATE_DIR, STATE_FILE);
}

/** The state, or undefined when there is none (or it is unreadable: then velo did not make this target). */
export function readTargetState(targetDir: string): TargetState | undefined {
  let text: string;
  try {
    text = readFileSync(statePath(targetDir), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const s = JSON.parse(text) as Partial<TargetState>;
    if (s.version !== STATE_VERSION || typeof s.key !== 'string' || typeof s.signature !== 'string' || typeof s.project !== 'string') return undefined;
    return {
      version: 1,
      project: s.project,
      key: s.key,
      snapshot: typeof s.snapshot === 'string' ? s.snapshot : null,
      snapshotName: typeof s.snapshotName === 'string' ? s.snapshotName : null,
      snapshotCreated: typeof s.snapshotCreated === 'number' ? s.snapshotCreated : 0,
      signature: s.signature,
      rustcStamp: typeof s.rustcStamp === 'string' ? s.rustcStamp : undefined,
      rustcVerbose: typeof s.rustcVerbose === 'string' ? s.rustcVerbose : undefined,
      keyMaterial: typeof s.keyMaterial === 'string' ? s.keyMaterial : undefined,
      viewTree: typeof s.viewTree === 'string' ? s.viewTree : undefined,
      updated: typeof s.updated === 'number' ? s.updated : 0,
    };
  } catch {
    return undefined;
  }
}

/** The state file's bytes (a mounted target carries them in its tree). */
export function serializeTargetState(state: Omit<TargetState, 'version' | 'updated'>, now = Date.now()): Buffer {
  const full: TargetState = { version: 1, ...state, updated: now };
  return Buffer.from(JSON.stringify(full, null, 2) + '\n');
}

export function writeTargetState(targetDir: string, state: Omit<TargetState, 'version' | 'updated'>): TargetState {
  const full: TargetState = { version: 1, ...state, updated: Date.now() };
  const dir = join(targetDir, STATE_DIR);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `${STATE_FILE}.${process.pid}.tmp`);
  writeFileSync(tmp, serializeTargetState(state, full.updated));
  renameSync(tmp, join(dir, STATE_FILE));
  return full;
}
