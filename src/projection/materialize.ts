/**
 * Put a store tree at a destination: built beside it, checked, swapped in.
 * The old destination stays intact until the swap; on any error the staging
 * directory is removed and the error thrown. Objects that fail the tamper
 * check are quarantined and reported (CORRUPT_OBJECT) — never linked.
 * The caller names the directory the destination must lie in (`within`);
 * nothing outside it is created, renamed or deleted (containment.ts).
 */
import { chmodSync, utimesSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { errnoCode, fsError, VeloError } from '../errors.js';
import type { LinkMethod } from '../config.js';
import { loadNative } from '../native.js';
import { quarantineObject } from '../store/commitObject.js';
import { unsoundObjects } from '../store/objectCheck.js';
import { readTreeBuffer } from '../store/trees.js';
import { parseTree, readTreeHeader, type ParsedEntry } from '../store/treeFormat.js';
import type { Store } from '../store/store.js';
import { createStaging, recoverLeftovers, removeTree, swapIntoPlace } from './atomicSwap.js';
import { projectionTarget, type ProjectionTarget } from './containment.js';
import { layOutTree, type LinkFarmResult } from './linkFarm.js';
import { resolveMethod, type ConcreteMethod } from './linkMethod.js';

export interface MaterializeOptions {
  /** the directory the destination must lie in (the project): velo touches nothing outside it */
  within: string;
  method?: LinkMethod;
  threads?: number;
  /** delete the previous tree in a detached process (the CLI does) */
  backgroundRemoval?: boolean;
  /** called with the staging directory once the tree is laid out, before the swap */
  beforeSwap?: (staging: string) => void | Promise<void>;
  /** use the JavaScript linker even when the native addon is built */
  noNative?: boolean;
  /** leave the previous tree aside (result.aside) instead of deleting it, for a later rollback */
  keepOld?: boolean;
}

export interface MaterializeResult extends Omit<LinkFarmResult, 'tampered'> {
  method: ConcreteMethod;
  engine: 'native' | 'js';
  tree: string;
  dest: string;
  /** dest with the directory it was checked against, for a later rollback (restoreAside) */
  target: ProjectionTarget;
  logicalBytes: number;
  /** with keepOld: where the previous tree was put aside */
  aside: string | undefined;
}

export class TamperedObjectsError extends VeloError {
  readonly objects: { digest: string; exec: boolean; path: string }[];
  constructor(objects: { digest: string; exec: boolean; path: string }[]) {
    const list = objects.slice(0, 5).map((o) => o.path).join(', ');
    super(
      'CORRUPT_OBJECT',
      `${objects.length} store object(s) were modified in place (through a hardlink) and have been quarantined: ${list}${objects.length > 5 ? ', …' : ''}`,
      { hint: 'run the install again to re-fetch them, or velo verify --repair' },
    );
    this.objects = objects;
  }
}

export async function materialize(store: Store, tree: string, destination: string, options: MaterializeOptions): Promise<MaterializeResult> {
  const target = projectionTarget(resolve(destination), options.within);
  const dest = target.dest;
  recoverLeftovers(target);
  const buf = readTreeBuffer(store, tree);
  const header = readTreeHeader(buf);
  if (store.hashBeforeLayout) {
    // before anything is laid out or swapped: never replace good bytes with unverified ones
    const entries = parseTree(buf).entries;
    const bad = await unsoundObjects(store, entries);
    if (bad.length > 0) throw quarantineTampered(store, entries, bad);
  }
  const method = resolveMethod(store, options.method ?? 'auto', dirname(dest));
  const staging = createStaging(target);
  let laid: LinkFarmResult;
  let engine: 'native' | 'js' = 'js';
  try {
    const native = options.noNative ? undefined : loadNative();
    if (native) {
      // the engine reads the entries itself; JavaScript parses them only to name tampered objects
      engine = 'native';
      try {
        laid = await native.materialize(buf, join(store.home, 'objects'), staging, method, options.threads ?? 4);
      } catch (err) {
        if (errnoCode(err) === 'CORRUPT_TREE') throw new VeloError('CORRUPT_TREE', `tree ${tree}: ${(err as Error).message}`, { cause: err });
        throw fsError(err, `cannot lay out ${dest}`); // ENAMETOOLONG, ENOSPC, EACCES…: the user's to act on, not an internal error
      }
    } else {
      laid = layOutTree(parseTree(buf), store.home, staging, method);
    }
    if (laid.tampered.length > 0) throw quarantineTampered(store, parseTree(buf).entries, laid.tampered);
    chmodSync(staging, 0o755);
    if (header.hasMtimes && header.rootMtimeNs !== 0n) {
      const t = Number(header.rootMtimeNs) / 1e9;
      utimesSync(staging, t, t);
    }
    await options.beforeSwap?.(staging);
  } catch (err) {
    removeTree(staging, target.within);
    throw err;
  }
  const aside = swapIntoPlace(staging, target, { backgroundRemoval: options.backgroundRemoval ?? false, keepOld: options.keepOld ?? false });
  const { tampered: _t, ...counts } = laid;
  return { ...counts, method, engine, tree, dest, target, logicalBytes: header.logicalSize, aside };
}

function quarantineTampered(store: Store, entries: ParsedEntry[], indices: number[]): TamperedObjectsError {
  const seen = new Set<string>();
  const objects: { digest: string; exec: boolean; path: string }[] = [];
  for (const i of indices) {
    const e = entries[i]!;
    const id = e.digest + (e.exec ? 'x' : '');
    if (seen.has(id)) continue;
    seen.add(id);
    quarantineObject(store, store.objectPath(e.digest, e.exec), e.digest, e.exec);
    objects.push({ digest: e.digest, exec: e.exec, path: e.path });
  }
  // an install catches the error and fetches the packages again: say once what happened
  store.notice('objects-unsound', `${objects.length} store object(s) missing or changed in place, quarantined: the packages that use them are fetched again`);
  return new TamperedObjectsError(objects);
}
