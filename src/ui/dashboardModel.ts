/**
 * The figures the dashboard shows, in the order it can afford them:
 *
 * 1. loadOverview — counters, project rows, key count, leases: a handful of
 *    index reads, independent of how many objects the store holds. This is
 *    the first frame.
 * 2. loadIndexDetails — the breakdown by ecosystem and the most shared
 *    packages: GROUP BY queries over keys and project_keys, run right after
 *    the first frame.
 * 3. sharing — per-project unique/shared bytes and the live set behind the
 *    gc estimate: a walk of trees (never objects), read from its cache when
 *    no project changed, else computed in the background.
 *
 * The static report and --json use the same functions, all at once.
 */
import { processAlive } from '../store/lock.js';
import { storeStatus, type StoreStatus } from '../store/status.js';
import { readCounters, type CounterName } from '../store/counters.js';
import {
  computeSharingStats,
  ecosystemBreakdown,
  gcEstimate,
  groupProjects,
  keysByKind,
  liveLeases,
  mostSharedPackages,
  readSharingCache,
  sharingFingerprint,
  type ComputeOptions,
  type EcosystemTotals,
  type GcEstimate,
  type ProjectGroup,
  type SharedPackage,
  type SharingStats,
} from '../store/projectStats.js';
import type { Store } from '../store/store.js';

/** the store's totals as `velo status` gives them, plus what the dashboard tracks */
export interface Overview extends Omit<StoreStatus, 'projects' | 'missingProjects' | 'methods' | 'probes'> {
  counters: Record<CounterName, number>;
  projects: ProjectGroup[];
  /** the fingerprint the sharing stats must have to belong to these rows */
  fingerprint: string;
  /** installs/gc running in other processes */
  leases: { kind: string; pid: number; started: number }[];
  installing: boolean;
  loadedAt: number;
  /** how long loading took */
  ms: number;
}

export interface IndexDetails {
  ecosystems: EcosystemTotals[];
  mostShared: SharedPackage[];
  ms: number;
}

export function loadOverview(store: Store, alive: (pid: number) => boolean = processAlive): Overview {
  const t0 = performance.now();
  const s = storeStatus(store);
  const counters = readCounters(store);
  const leases = liveLeases(store, (pid) => pid !== process.pid && alive(pid));
  // the dashboard lists gone projects too (marked gone); the byte figures count live ones only
  const rows = [...s.projects, ...s.missingProjects];
  const projects = groupProjects(rows);
  return {
    home: s.home,
    digest: s.digest,
    objects: s.objects,
    physicalBytes: s.physicalBytes,
    trees: s.trees,
    treeBytes: s.treeBytes,
    keys: s.keys,
    logicalBytes: s.logicalBytes,
    dedupRatio: s.dedupRatio,
    bytesSaved: s.bytesSaved,
    counters,
    projects,
    fingerprint: sharingFingerprint(rows),
    leases,
    installing: leases.some((l) => l.kind === 'install'),
    loadedAt: Date.now(),
    ms: performance.now() - t0,
  };
}

export function loadIndexDetails(store: Store, overview: Overview, sharedLimit = 10): IndexDetails {
  const t0 = performance.now();
  return {
    ecosystems: ecosystemBreakdown(overview.projects, keysByKind(store)),
    mostShared: mostSharedPackages(store, sharedLimit),
    ms: performance.now() - t0,
  };
}

/** The cached sharing stats for these rows, if still valid. */
export function cachedSharing(store: Store, overview: Overview): SharingStats | undefined {
  return readSharingCache(store, overview.fingerprint);
}

export function computeSharing(store: Store, options?: ComputeOptions): Promise<SharingStats> {
  return computeSharingStats(store, options);
}

export function estimateGc(overview: Overview, sharing: SharingStats): GcEstimate {
  return gcEstimate(overview.counters, overview.keys, sharing);
}

export interface DashboardReport {
  store: Pick<StoreStatus, 'home' | 'digest' | 'objects' | 'physicalBytes' | 'trees' | 'treeBytes' | 'keys' | 'logicalBytes' | 'dedupRatio' | 'bytesSaved'>;
  projects: {
    path: string;
    ecosystems: string[];
    initialized: boolean;
    packages: number;
    logicalBytes: number;
    uniqueBytes: number | null;
    sharedBytes: number | null;
    projection: string;
    methods: string[];
    lastUsed: string;
    exists: boolean;
  }[];
  ecosystems: EcosystemTotals[];
  mostShared: SharedPackage[];
  gc: GcEstimate | null;
  activity: { kind: string; pid: number; started: string }[];
}

/** Everything at once (static table, --json): the sharing stats from cache or computed now. */
export async function loadReport(store: Store): Promise<DashboardReport> {
  const o = loadOverview(store);
  const d = loadIndexDetails(store, o);
  const sharing = cachedSharing(store, o) ?? (await computeSharing(store));
  return toReport(o, d, sharing);
}

/** One row per project, as the report and the interactive table show it. */
export function projectRows(o: Overview, sharing: SharingStats | undefined): DashboardReport['projects'] {
  return o.projects.map((g) => ({
    path: g.root,
    ecosystems: g.ecosystems,
    initialized: g.initialized,
    packages: g.packages,
    logicalBytes: g.logicalBytes,
    uniqueBytes: sharing?.projects[g.root]?.uniqueBytes ?? null,
    sharedBytes: sharing?.projects[g.root]?.sharedBytes ?? null,
    projection: g.projection,
    methods: g.methods,
    lastUsed: new Date(g.lastUsed).toISOString(),
    exists: g.exists,
  }));
}

export function toReport(o: Overview, d: IndexDetails, sharing: SharingStats | undefined): DashboardReport {
  return {
    store: {
      home: o.home,
      digest: o.digest,
      objects: o.objects,
      physicalBytes: o.physicalBytes,
      trees: o.trees,
      treeBytes: o.treeBytes,
      keys: o.keys,
      logicalBytes: o.logicalBytes,
      dedupRatio: o.dedupRatio,
      bytesSaved: o.bytesSaved,
    },
    projects: projectRows(o, sharing),
    ecosystems: d.ecosystems,
    mostShared: d.mostShared,
    gc: sharing ? estimateGc(o, sharing) : null,
    activity: o.leases.map((l) => ({ kind: l.kind, pid: l.pid, started: new Date(l.started).toISOString() })),
  };
}
