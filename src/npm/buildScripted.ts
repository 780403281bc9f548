/**
 * Stage 3 of a lockfile install: packages with install scripts (or a
 * binding.gyp). Each gets a built key — its pristine key plus the keys of
 * its dependency closure (and the platform, in builtKey) — so a package
 * built once is laid out built next time; the rest run their scripts in
 * the projected tree, as npm would, and the result is stored.
 */
import { setKey, getKeys } from '../store/keys.js';
import { readTree } from '../store/trees.js';
import type { Store } from '../store/store.js';
import type { PlacedPackage } from './layout.js';
import type { Plan, PlannedPackage } from './plan.js';
import type { AnyRecord } from './userNpm.js';
import { packagesNeedingScripts, runDependencyScripts } from './scripts.js';
import { treeKeyOf } from './fetchMissing.js';

export interface BuildPlan {
  /** every package, with the tree to lay out (the built one when the store has it) */
  placed: PlacedPackage[];
  /** packages whose scripts apply (private copies in the tree) */
  scripted: PlannedPackage[];
  /** scripted packages the store has no built tree for: their scripts run */
  toBuild: PlannedPackage[];
  builtKeys: Map<PlannedPackage, string>;
}

function hasBindingGypInTree(store: Store, tree: string): boolean {
  return readTree(store, tree).entries.some((e) => e.parent === 0 && e.name === 'binding.gyp' && e.kind === 'file');
}

/** Keys of everything a package's scripts could see: its dependency closure. */
function closureKeys(pkg: PlannedPackage, keyOf: Map<AnyRecord, string>): string[] {
  const seen = new Set<AnyRecord>();
  const stack: AnyRecord[] = [pkg.node];
  const keys: string[] = [];
  while (stack.length) {
    const node = stack.pop()!;
    for (const edge of node.edgesOut?.values?.() ?? []) {
      const to = edge.to?.isLink ? edge.to.target : edge.to;
      if (!to || seen.has(to)) continue;
      seen.add(to);
      keys.push(keyOf.get(to) ?? `unkeyed:${to.location}`);
      stack.push(to);
    }
  }
  return keys;
}

export async function planBuilds(store: Store, plan: Plan, have: Map<string, string>): Promise<BuildPlan> {
  const { builtKey } = await import('./packageKey.js');
  const treeOf = (p: PlannedPackage): string => have.get(treeKeyOf(p))!;
  const scripted = packagesNeedingScripts(plan, plan.packages, (p) => hasBindingGypInTree(store, treeOf(p)));
  const keyOf = new Map<AnyRecord, string>(plan.packages.map((p) => [p.node, treeKeyOf(p)]));
  const builtKeys = new Map<PlannedPackage, string>();
  for (const p of scripted) if (p.key) builtKeys.set(p, builtKey(p.key, closureKeys(p, keyOf)));
  const builtHave = getKeys(store, [...builtKeys.values()]);
  const toBuild = scripted.filter((p) => !builtHave.has(builtKeys.get(p) ?? ''));
  const scriptedSet = new Set(scripted);
  const placed: PlacedPackage[] = plan.packages.map((p) => {
    const bk = builtKeys.get(p);
    const built = bk ? builtHave.get(bk) : undefined;
    return { pkg: p, tree: built ?? treeOf(p), private: scriptedSet.has(p) };
  });
  return { placed, scripted, toBuild, builtKeys };
}

/** Run the scripts of the packages to build, in the projected tree, and store what they built. Returns the optional packages whose scripts failed. */
export async function runBuilds(store: Store, plan: Plan, b: BuildPlan, threads: number): Promise<PlannedPackage[]> {
  const { ingestDir } = await import('../store/addFilesFromDir.js');
  const failedOptional = await runDependencyScripts(plan, b.toBuild);
  for (const p of b.toBuild) {
    const bk = b.builtKeys.get(p);
    if (!bk || failedOptional.includes(p)) continue;
    const built = await ingestDir(store, p.node.path, { threads });
    setKey(store, bk, built.tree, { kind: 'npm-built', logicalBytes: built.bytes, files: built.files });
  }
  return failedOptional;
}
