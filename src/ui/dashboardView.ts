/**
 * What the dashboard shows, as lines of text with a little style, from the
 * figures and the UI state: a pure function with no Ink in it. The Ink
 * component (Dashboard.tsx) renders these lines; `velo dashboard` also
 * paints the first of them with plain ANSI while Ink is still loading.
 *
 * Layout, top to bottom, never more than rows − 1 lines: title, totals,
 * panel tabs, the panel (or a project's detail), a status line, the keys.
 * In narrow terminals columns drop by priority and labels shorten.
 */
import type { ProjectGroup, SharingStats } from '../store/projectStats.js';
import { estimateGc, projectRows, type IndexDetails, type Overview } from './dashboardModel.js';
import { projectColumns, type ProjectRow } from './staticReport.js';
import {
  clipEnd,
  clipStart,
  displayPath,
  fitColumns,
  formatAgo,
  formatBytes,
  formatCount,
  formatDuration,
  formatRatio,
  padEnd,
  renderRow,
  type Column,
} from './format.js';

export const PANELS = ['projects', 'ecosystems', 'shared', 'gc'] as const;
export type Panel = (typeof PANELS)[number];
const PANEL_TITLES: Record<Panel, [string, string]> = {
  projects: ['Projects', 'Proj'],
  ecosystems: ['Ecosystems', 'Eco'],
  shared: ['Shared packages', 'Shared'],
  gc: ['GC', 'GC'],
};

export type Modal = { kind: 'confirm-gc' } | { kind: 'running'; what: 'gc' | 'verify'; started: number } | undefined;

export type SharingState =
  | { status: 'computing'; stats: SharingStats | undefined }
  | { status: 'ready'; stats: SharingStats }
  | { status: 'error'; stats: SharingStats | undefined; error: string };

export interface ViewState {
  home: string;
  overview: Overview | undefined;
  details: IndexDetails | undefined;
  sharing: SharingState;
  panel: Panel;
  selected: number;
  detailRoot: string | undefined;
  modal: Modal;
  message: string | undefined;
  loadError: string | undefined;
  spin: number;
  columns: number;
  rows: number;
  now: number;
}

export interface Segment {
  text: string;
  inverse?: boolean;
}

export interface ViewLine {
  text: string;
  /** a line made of differently styled parts (the tabs) */
  segments?: Segment[];
  bold?: boolean;
  dim?: boolean;
  inverse?: boolean;
  color?: 'yellow' | 'red';
}

const SPIN = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export function initialViewState(home: string, overview: Overview | undefined, size: { columns: number; rows: number }): ViewState {
  return {
    home,
    overview,
    details: undefined,
    sharing: { status: 'computing', stats: undefined },
    panel: 'projects',
    selected: 0,
    detailRoot: undefined,
    modal: undefined,
    message: undefined,
    loadError: undefined,
    spin: 0,
    columns: size.columns,
    rows: size.rows,
    now: Date.now(),
  };
}

/** The sharing stats when they belong to the rows on screen. */
export function currentSharing(s: Pick<ViewState, 'sharing' | 'overview'>): SharingStats | undefined {
  return s.sharing.stats && s.sharing.stats.fingerprint === s.overview?.fingerprint ? s.sharing.stats : undefined;
}

/** How many rows the current panel's list has (for ↑/↓). */
export function listLength(s: Pick<ViewState, 'panel' | 'overview' | 'details'>): number {
  if (s.panel === 'projects') return s.overview?.projects.length ?? 0;
  if (s.panel === 'shared') return s.details?.mostShared.length ?? 0;
  if (s.panel === 'ecosystems') return s.details?.ecosystems.length ?? 0;
  return 0;
}



/** A scrolling window of a list that keeps the selection visible. */
function windowed<T>(items: T[], selected: number, visible: number): { top: number; shown: T[] } {
  const top = Math.max(0, Math.min(selected - visible + 1, items.length - visible));
  return { top, shown: items.slice(top, top + visible) };
}

export function dashboardLines(s: ViewState): ViewLine[] {
  const { columns, rows, overview } = s;
  const narrow = columns < 60;
  const lines: ViewLine[] = [];
  const push = (text: string, style: Omit<ViewLine, 'text'> = {}): void => {
    lines.push({ text: clipEnd(text, columns), ...style });
  };

  const activity = overview?.leases.length ? overview.leases.map((l) => `${l.kind} running (pid ${l.pid})`).join(', ') : '';
  push(`velo dashboard · ${displayPath(overview?.home ?? s.home)}${activity ? ` · ${activity}` : ''}`, { bold: true });
  if (!overview) push(s.loadError ? `cannot read the store: ${s.loadError}` : 'loading…');
  else {
    push(
      narrow
        ? `${formatCount(overview.objects)} obj · ${formatBytes(overview.physicalBytes)} disk · ${formatRatio(overview.dedupRatio)} · ${formatBytes(overview.bytesSaved)} saved`
        : `objects ${formatCount(overview.objects)} · disk ${formatBytes(overview.physicalBytes)} · logical ${formatBytes(overview.logicalBytes)} · dedup ${formatRatio(overview.dedupRatio)} · saved ${formatBytes(overview.bytesSaved)}`,
    );
  }
  const segments = PANELS.map((p, i) => ({
    text: `${i === 0 ? '' : ' '}${PANEL_TITLES[p][narrow ? 1 : 0]} `,
    inverse: p === s.panel && s.detailRoot === undefined,
  }));
  lines.push({ text: clipEnd(segments.map((x) => x.text).join(''), columns), segments });

  const bodyRows = Math.max(1, rows - 1 - lines.length - 2);
  const body: ViewLine[] = [];
  const sharing = currentSharing(s);
  const spinner = SPIN[s.spin % SPIN.length]!;

  if (s.detailRoot !== undefined) {
    body.push(...projectDetail(overview?.projects.find((p) => p.root === s.detailRoot), sharing, columns, s.now));
  } else if (!overview) {
    body.push({ text: '' });
  } else if (s.panel === 'projects') {
    const fit = fitColumns(projectColumns(s.now), columns - 2);
    body.push({ text: '  ' + renderRow(fit.columns, undefined, fit.flexWidth), bold: true });
    const all = projectRows(overview, sharing);
    if (all.length === 0) body.push({ text: '  no projects registered yet: velo init, velo npm ci or velo cargo build register one', dim: true });
    const { top, shown } = windowed(all, s.selected, bodyRows - 1);
    for (const [i, r] of shown.entries()) {
      const sel = top + i === s.selected;
      body.push({ text: (sel ? '▸ ' : '  ') + renderRow(fit.columns, r, fit.flexWidth), inverse: sel });
    }
  } else if (s.panel === 'ecosystems') {
    if (!s.details) body.push({ text: `loading ${spinner}`, dim: true });
    else {
      type E = IndexDetails['ecosystems'][number];
      const cols: Column<E>[] = [
        { title: 'ECOSYSTEM', priority: 100, clip: 'end', value: (e) => e.ecosystem },
        { title: 'PROJECTS', width: 8, align: 'right', priority: 60, value: (e) => String(e.projects) },
        { title: 'PKGS', width: 6, align: 'right', priority: 50, value: (e) => String(e.packages) },
        { title: 'LOGICAL', width: 9, align: 'right', priority: 100, value: (e) => formatBytes(e.logicalBytes) },
        { title: 'KEYS', width: 7, align: 'right', priority: 30, value: (e) => formatCount(e.keys) },
        { title: 'STORED', width: 9, align: 'right', priority: 40, value: (e) => formatBytes(e.keyBytes) },
      ];
      const fit = fitColumns(cols, Math.min(columns - 2, 72), 9);
      body.push({ text: '  ' + renderRow(fit.columns, undefined, fit.flexWidth), bold: true });
      if (s.details.ecosystems.length === 0) body.push({ text: '  nothing stored yet', dim: true });
      const { top, shown } = windowed(s.details.ecosystems, s.selected, bodyRows - 1);
      for (const [i, e] of shown.entries()) {
        const sel = top + i === s.selected;
        body.push({ text: (sel ? '▸ ' : '  ') + renderRow(fit.columns, e, fit.flexWidth), inverse: sel });
      }
    }
  } else if (s.panel === 'shared') {
    if (!s.details) body.push({ text: `loading ${spinner}`, dim: true });
    else {
      type S = IndexDetails['mostShared'][number];
      const cols: Column<S>[] = [
        { title: 'PACKAGE', priority: 100, clip: 'end', value: (x) => x.name },
        { title: 'PROJECTS', width: 8, align: 'right', priority: 100, value: (x) => String(x.projects) },
        { title: 'SIZE', width: 9, align: 'right', priority: 40, value: (x) => formatBytes(x.logicalBytes) },
        { title: 'SAVED', width: 9, align: 'right', priority: 50, value: (x) => formatBytes(x.savedBytes) },
      ];
      const fit = fitColumns(cols, columns - 2, 12);
      body.push({ text: '  ' + renderRow(fit.columns, undefined, fit.flexWidth), bold: true });
      if (s.details.mostShared.length === 0) body.push({ text: '  no package is used by a registered project yet', dim: true });
      const { top, shown } = windowed(s.details.mostShared, s.selected, bodyRows - 1);
      for (const [i, x] of shown.entries()) {
        const sel = top + i === s.selected;
        body.push({ text: (sel ? '▸ ' : '  ') + renderRow(fit.columns, x, fit.flexWidth), inverse: sel });
      }
    }
  } else if (!sharing) {
    body.push({ text: `estimating what gc would reclaim (reading the projects' trees) ${spinner}`, dim: true });
  } else {
    const e = estimateGc(overview, sharing);
    body.push({ text: `gc would reclaim about ${formatBytes(e.objectBytes + e.treeBytes)}`, bold: true });
    body.push({ text: `  ${formatCount(e.objects)} objects (${formatBytes(e.objectBytes)}), ${formatCount(e.trees)} trees (${formatBytes(e.treeBytes)}), ${formatCount(e.keys)} keys` });
    if (e.projectsDropped) body.push({ text: `  ${e.projectsDropped} registered dir(s) no longer exist and would be unregistered` });
    body.push({ text: `  in use: ${formatCount(sharing.live.objects)} objects (${formatBytes(sharing.live.objectBytes)}) by live projects and their keys` });
    body.push({ text: `  estimated from the counters and the live trees ${formatAgo(e.computedAt, s.now)} ago; g runs gc`, dim: true });
  }
  for (const b of body.slice(0, bodyRows)) lines.push({ ...b, text: clipEnd(b.text, columns) });
  for (let i = body.length; i < bodyRows; i++) lines.push({ text: '' });

  let status: ViewLine;
  if (s.modal?.kind === 'confirm-gc') {
    const e = overview && sharing ? estimateGc(overview, sharing) : undefined;
    status = { text: `Run gc${e ? ` (reclaims ~${formatBytes(e.objectBytes + e.treeBytes)})` : ''}? y = yes, n = no`, color: 'yellow', bold: true };
  } else if (s.modal?.kind === 'running') status = { text: `${spinner} ${s.modal.what} running… ${formatDuration(s.now - s.modal.started)}` };
  else if (s.message) status = { text: s.message };
  else if (s.loadError) status = { text: `error: ${s.loadError}`, color: 'red' };
  else if (s.sharing.status === 'computing') status = { text: `${spinner} computing unique/shared bytes from the projects' trees…`, dim: true };
  else if (s.sharing.status === 'error') status = { text: `unique/shared bytes unavailable: ${s.sharing.error}`, dim: true };
  else status = { text: '' };
  lines.push({ ...status, text: clipEnd(status.text, columns) });
  const keys =
    s.detailRoot !== undefined
      ? 'esc back · r refresh · q quit'
      : narrow
        ? '←→ ↑↓ ⏎ g v r q'
        : '←/→ tab panel · ↑/↓ move · enter detail · g gc · v verify · r refresh · q quit';
  lines.push({ text: clipEnd(keys, columns), dim: true });
  return lines;
}

function projectDetail(g: ProjectGroup | undefined, sharing: SharingStats | undefined, columns: number, now: number): ViewLine[] {
  if (!g) return [{ text: 'this project is no longer registered (esc to go back)', dim: true }];
  const sh = sharing?.projects[g.root];
  const out: ViewLine[] = [
    { text: clipStart(displayPath(g.root), columns), bold: true },
    { text: `${g.ecosystems.join(', ') || 'no trees yet'}${g.initialized ? ' · velo init' : ''}${g.exists ? '' : ' · directory gone'} · ${g.packages} packages · ${formatCount(g.files)} files` },
    {
      text: `logical ${formatBytes(g.logicalBytes)} · unique ${sh ? formatBytes(sh.uniqueBytes) : '…'} · shared ${sh ? formatBytes(sh.sharedBytes) : '…'} · ${g.projection}${g.methods.length ? ` (${g.methods.join(', ')})` : ''}`,
    },
    { text: '' },
    { text: `  ${padEnd('ECO', 6)} ${padEnd('TREE', 12)} ${padEnd('METHOD', 8)} ${padEnd('FILES', 7)} ${padEnd('LOGICAL', 9)} ${padEnd('USED', 4)} DIR`, bold: true },
  ];
  for (const r of g.rows) {
    const rel = r.path === g.root ? '.' : r.path.startsWith(g.root + '/') ? r.path.slice(g.root.length + 1) : r.path;
    out.push({
      text: `  ${padEnd(r.ecosystem, 6)} ${padEnd(r.tree.slice(0, 12), 12)} ${padEnd(r.projection === 'mount' ? 'mount' : r.method || '-', 8)} ${padEnd(formatCount(r.files), 7)} ${padEnd(formatBytes(r.logicalBytes), 9)} ${padEnd(formatAgo(r.updated, now), 4)} ${rel}`,
    });
  }
  return out;
}

/** The lines as ANSI text (bold, dim, inverse), for painting before Ink is loaded. */
export function linesToAnsi(lines: ViewLine[]): string {
  const style = (text: string, l: { bold?: boolean | undefined; dim?: boolean | undefined; inverse?: boolean | undefined }): string => {
    const codes = [l.bold ? '1' : '', l.dim ? '2' : '', l.inverse ? '7' : ''].filter(Boolean);
    return codes.length ? `\x1b[${codes.join(';')}m${text}\x1b[0m` : text;
  };
  return lines.map((l) => (l.segments ? l.segments.map((sg) => style(sg.text, sg)).join('') : style(l.text, l))).join('\r\n');
}
