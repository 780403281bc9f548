/**
 * Small text helpers shared by the dashboard (Ink and static) and progress:
 * sizes, counts, ages, and fitting text into columns.
 */
import { homedir } from 'node:os';

export { formatBytes, formatDuration } from './progress.js';

export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** "12s", "5m", "3h", "2d", "7w" ago (compact, for a table column). */
export function formatAgo(ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  if (s < 14 * 86_400) return `${Math.floor(s / 86_400)}d`;
  return `${Math.floor(s / (7 * 86_400))}w`;
}

export function formatRatio(r: number): string {
  return `${r.toFixed(r >= 100 ? 0 : 2)}x`;
}

/** Visible length (code points; the dashboard's text is paths, numbers and ASCII). */
export function textWidth(s: string): number {
  return [...s].length;
}

/** Cut to width, with an ellipsis at the end. */
export function clipEnd(s: string, width: number): string {
  if (width <= 0) return '';
  const chars = [...s];
  return chars.length <= width ? s : chars.slice(0, Math.max(0, width - 1)).join('') + '…';
}

/** Cut to width, keeping the end (for paths: the project's own name stays). */
export function clipStart(s: string, width: number): string {
  if (width <= 0) return '';
  const chars = [...s];
  return chars.length <= width ? s : '…' + chars.slice(chars.length - width + 1).join('');
}

export function padEnd(s: string, width: number): string {
  const c = clipEnd(s, width);
  return c + ' '.repeat(Math.max(0, width - textWidth(c)));
}

export function padStart(s: string, width: number): string {
  const c = clipEnd(s, width);
  return ' '.repeat(Math.max(0, width - textWidth(c))) + c;
}

/** A path for display: ~ for the home directory. */
export function displayPath(path: string, home = homedir()): string {
  if (home && home !== '/' && (path === home || path.startsWith(home + '/'))) return '~' + path.slice(home.length);
  return path;
}

export interface Column<Row> {
  title: string;
  /** fixed width; the flexible column has none */
  width?: number;
  align?: 'left' | 'right';
  /** lower goes first when the terminal is too narrow */
  priority: number;
  /** the flexible column clips at the start (paths) */
  clip?: 'start' | 'end';
  value: (row: Row) => string;
}

/**
 * Choose columns for a width: the flexible column gets what is left, and
 * while it would get fewer than minFlex characters the lowest-priority
 * fixed column is dropped.
 */
export function fitColumns<Row>(columns: Column<Row>[], width: number, minFlex = 16): { columns: Column<Row>[]; flexWidth: number } {
  let chosen = [...columns];
  const flexWidth = (cols: Column<Row>[]): number => width - cols.reduce((s, c) => s + (c.width ?? 0), 0) - (cols.length - 1);
  while (flexWidth(chosen) < minFlex) {
    const droppable = chosen.filter((c) => c.width !== undefined);
    if (droppable.length === 0) break;
    const lowest = droppable.reduce((a, b) => (b.priority < a.priority ? b : a));
    if (lowest.priority >= 100) break; // never drop the essentials
    chosen = chosen.filter((c) => c !== lowest);
  }
  return { columns: chosen, flexWidth: Math.max(4, flexWidth(chosen)) };
}

export function renderCell<Row>(c: Column<Row>, row: Row | undefined, flexWidth: number): string {
  const w = c.width ?? flexWidth;
  const v = row === undefined ? c.title : c.value(row);
  if (c.width === undefined) {
    const clipped = c.clip === 'end' ? clipEnd(v, w) : clipStart(v, w);
    return row === undefined ? padEnd(c.title, w) : clipped + ' '.repeat(Math.max(0, w - textWidth(clipped)));
  }
  return c.align === 'right' ? padStart(v, w) : padEnd(v, w);
}

export function renderRow<Row>(columns: Column<Row>[], row: Row | undefined, flexWidth: number): string {
  return columns.map((c) => renderCell(c, row, flexWidth)).join(' ');
}
