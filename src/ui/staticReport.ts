/**
 * The dashboard's figures as plain text, for when there is no terminal to
 * draw on (piped, CI): the same sections as the interactive dashboard, one
 * after the other, paths in full.
 */
import type { DashboardReport } from './dashboardModel.js';
import { displayPath, formatAgo, formatBytes, formatCount, formatRatio, renderRow, type Column } from './format.js';

export type ProjectRow = DashboardReport['projects'][number];

export function projectColumns(now = Date.now()): Column<ProjectRow>[] {
  return [
    { title: 'PATH', priority: 100, clip: 'start', value: (p) => displayPath(p.path) + (p.exists ? '' : ' (gone)') },
    { title: 'ECOSYSTEMS', width: 11, priority: 50, value: (p) => p.ecosystems.join(',') || (p.initialized ? 'init' : '-') },
    { title: 'PKGS', width: 5, align: 'right', priority: 40, value: (p) => String(p.packages) },
    { title: 'LOGICAL', width: 8, align: 'right', priority: 100, value: (p) => formatBytes(p.logicalBytes) },
    { title: 'UNIQUE', width: 8, align: 'right', priority: 30, value: (p) => (p.uniqueBytes === null ? '…' : formatBytes(p.uniqueBytes)) },
    { title: 'SHARED', width: 8, align: 'right', priority: 20, value: (p) => (p.sharedBytes === null ? '…' : formatBytes(p.sharedBytes)) },
    { title: 'PROJ', width: 5, priority: 10, value: (p) => p.projection },
    { title: 'USED', width: 4, align: 'right', priority: 15, value: (p) => formatAgo(Date.parse(p.lastUsed), now) },
  ];
}

export function totalsLines(r: DashboardReport): string[] {
  const s = r.store;
  return [
    `store      ${s.home} (${s.digest})`,
    `objects    ${formatCount(s.objects)} (${formatBytes(s.physicalBytes)} on disk), ${formatCount(s.trees)} trees, ${formatCount(s.keys)} keys`,
    `logical    ${formatBytes(s.logicalBytes)} in ${r.projects.length} project(s)`,
    `dedup      ${formatRatio(s.dedupRatio)}, ${formatBytes(s.bytesSaved)} saved`,
  ];
}

export function renderStaticReport(r: DashboardReport, now = Date.now()): string {
  const lines: string[] = ['velo dashboard', '', ...totalsLines(r)];
  for (const a of r.activity) lines.push(`running    ${a.kind} (pid ${a.pid}) since ${a.started}`);

  lines.push('', 'Projects');
  if (r.projects.length === 0) lines.push('  (none registered: velo init, velo npm ci, velo cargo build … register projects)');
  else {
    const cols = projectColumns(now);
    const flex = Math.max(4, ...r.projects.map((p) => [...cols[0]!.value(p)].length));
    lines.push('  ' + renderRow(cols, undefined, flex).trimEnd());
    for (const p of r.projects) lines.push('  ' + renderRow(cols, p, flex).trimEnd());
  }

  lines.push('', 'By ecosystem');
  if (r.ecosystems.length === 0) lines.push('  (nothing stored yet)');
  else {
    type E = DashboardReport['ecosystems'][number];
    const cols: Column<E>[] = [
      { title: 'ECOSYSTEM', width: 10, priority: 100, value: (e) => e.ecosystem },
      { title: 'PROJECTS', width: 8, align: 'right', priority: 100, value: (e) => String(e.projects) },
      { title: 'PACKAGES', width: 8, align: 'right', priority: 100, value: (e) => String(e.packages) },
      { title: 'LOGICAL', width: 9, align: 'right', priority: 100, value: (e) => formatBytes(e.logicalBytes) },
      { title: 'KEYS', width: 7, align: 'right', priority: 100, value: (e) => String(e.keys) },
      { title: 'STORED', width: 9, align: 'right', priority: 100, value: (e) => formatBytes(e.keyBytes) },
    ];
    lines.push('  ' + renderRow(cols, undefined, 0).trimEnd());
    for (const e of r.ecosystems) lines.push('  ' + renderRow(cols, e, 0).trimEnd());
  }

  lines.push('', 'Most shared packages');
  if (r.mostShared.length === 0) lines.push('  (no package is used by a registered project yet)');
  else {
    type S = DashboardReport['mostShared'][number];
    const cols: Column<S>[] = [
      { title: 'PACKAGE', priority: 100, clip: 'end', value: (x) => x.name },
      { title: 'PROJECTS', width: 8, align: 'right', priority: 100, value: (x) => String(x.projects) },
      { title: 'SIZE', width: 9, align: 'right', priority: 100, value: (x) => formatBytes(x.logicalBytes) },
      { title: 'SAVED', width: 9, align: 'right', priority: 100, value: (x) => formatBytes(x.savedBytes) },
    ];
    const flex = Math.max(7, ...r.mostShared.map((x) => [...x.name].length));
    lines.push('  ' + renderRow(cols, undefined, flex).trimEnd());
    for (const x of r.mostShared) lines.push('  ' + renderRow(cols, x, flex).trimEnd());
  }

  lines.push('', 'gc');
  if (!r.gc) lines.push('  (not estimated)');
  else {
    lines.push(
      `  would reclaim about ${formatBytes(r.gc.objectBytes + r.gc.treeBytes)}: ${formatCount(r.gc.objects)} objects (${formatBytes(r.gc.objectBytes)}), ` +
        `${formatCount(r.gc.trees)} trees, ${formatCount(r.gc.keys)} keys` +
        (r.gc.projectsDropped ? `; ${r.gc.projectsDropped} registered dir(s) are gone` : ''),
    );
    lines.push('  (estimate from the counters and the live projects\' trees; velo gc --dry-run counts exactly)');
  }
  return lines.join('\n') + '\n';
}
