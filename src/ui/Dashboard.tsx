/**
 * `velo dashboard`: what the store holds and what it saves, live.
 *
 * The first frame comes from the overview (counters and project rows: no
 * walk of anything); the breakdown by ecosystem and the most shared
 * packages follow right after it; per-project unique/shared bytes and the
 * gc estimate come from the sharing stats, cached or computed in the
 * background (a walk of trees, between which input is handled). gc and
 * verify run as tasks the caller supplies (the CLI runs `velo gc` /
 * `velo verify` in a child process, so the screen stays live).
 *
 * What is drawn is decided by dashboardView.ts; this component holds the
 * state, the timers and the keys: ←/→ or tab/shift-tab switch panels, ↑/↓
 * move, enter opens a project (esc goes back), g gc (asks first), v verify,
 * r refresh, q quit.
 */
import { useCallback, useEffect, useRef, useState, type JSX } from 'react';
import { Box, Text, useApp, useInput, useWindowSize } from 'ink';
import type { Store } from '../store/store.js';
import { cachedSharing, computeSharing, loadIndexDetails, loadOverview, type IndexDetails, type Overview } from './dashboardModel.js';
import { PANELS, dashboardLines, listLength, type Modal, type Panel, type SharingState } from './dashboardView.js';

export interface TaskResult {
  ok: boolean;
  message: string;
}

export interface DashboardTasks {
  gc: () => Promise<TaskResult>;
  verify: () => Promise<TaskResult>;
}

export interface DashboardProps {
  store: Store;
  tasks: DashboardTasks;
  /** terminal size override (tests; default: the terminal's) */
  columns?: number;
  rows?: number;
  /** refresh intervals: while an install runs in another process, and otherwise */
  refresh?: { activeMs: number; idleMs: number };
  /** the first frame's figures, if the caller loaded them already */
  initial?: Overview;
  alive?: (pid: number) => boolean;
}

const pauseForInput = (): Promise<void> => new Promise((r) => setImmediate(r));

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function Dashboard(props: DashboardProps): JSX.Element {
  const { store, tasks, alive } = props;
  const { exit } = useApp();
  const size = useWindowSize();
  const columns = Math.max(20, props.columns ?? size.columns ?? 80);
  const rows = Math.max(8, props.rows ?? size.rows ?? 24);
  const refresh = props.refresh ?? { activeMs: 1000, idleMs: 5000 };

  const [overview, setOverview] = useState<Overview | undefined>(() => props.initial);
  const [loadError, setLoadError] = useState<string | undefined>();
  const [details, setDetails] = useState<IndexDetails | undefined>();
  const [sharing, setSharing] = useState<SharingState>({ status: 'computing', stats: undefined });
  const [panel, setPanel] = useState<Panel>('projects');
  const [selected, setSelected] = useState(0);
  const [detailRoot, setDetailRoot] = useState<string | undefined>();
  const [modal, setModal] = useState<Modal>();
  const [message, setMessage] = useState<string | undefined>();
  const [tick, setTick] = useState(0);
  const [spin, setSpin] = useState(0);
  const computing = useRef<AbortController | undefined>(undefined);

  const reload = useCallback(
    (withDetails: boolean): Overview | undefined => {
      try {
        const o = loadOverview(store, alive);
        setOverview(o);
        setLoadError(undefined);
        if (withDetails) setDetails(loadIndexDetails(store, o));
        return o;
      } catch (e) {
        setLoadError(errorText(e));
        return undefined;
      }
    },
    [store, alive],
  );

  // first frame: the overview (unless given); right after it, the index details
  useEffect(() => {
    const o = overview ?? reload(false);
    const t = setImmediate(() => {
      try {
        if (o) setDetails(loadIndexDetails(store, o));
      } catch (e) {
        setLoadError(errorText(e));
      }
    });
    return () => clearImmediate(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  // the sharing stats follow the project rows' fingerprint: from the cache, else computed in the background
  const fingerprint = overview?.fingerprint;
  useEffect(() => {
    if (!fingerprint || !overview) return;
    if (sharing.status === 'ready' && sharing.stats.fingerprint === fingerprint) return;
    let cached;
    try {
      cached = cachedSharing(store, overview);
    } catch {
      cached = undefined;
    }
    if (cached) {
      setSharing({ status: 'ready', stats: cached });
      return;
    }
    computing.current?.abort();
    const ac = new AbortController();
    computing.current = ac;
    setSharing((s) => ({ status: 'computing', stats: s.stats }));
    const t = setImmediate(() => {
      computeSharing(store, { pause: pauseForInput, signal: ac.signal }).then(
        (stats) => {
          if (!ac.signal.aborted) setSharing({ status: 'ready', stats });
        },
        (e: unknown) => {
          if (!ac.signal.aborted) setSharing((s) => ({ status: 'error', stats: s.stats, error: errorText(e) }));
        },
      );
    });
    return () => {
      clearImmediate(t);
      ac.abort();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [fingerprint, store]);

  // refresh by itself: every second while an install runs elsewhere, else every few seconds
  const installing = overview?.installing ?? false;
  useEffect(() => {
    const t = setTimeout(
      () => {
        const before = overview?.fingerprint;
        const o = reload(false);
        if (o && o.fingerprint !== before) {
          try {
            setDetails(loadIndexDetails(store, o));
          } catch {
            /* shown on the next manual refresh */
          }
        }
        setTick((x) => x + 1);
      },
      installing ? refresh.activeMs : refresh.idleMs,
    );
    return () => clearTimeout(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [tick, installing, reload]);

  // a spinner (and a running clock) while something works
  const busy = modal?.kind === 'running' || sharing.status === 'computing' || details === undefined;
  useEffect(() => {
    if (!busy) return;
    const t = setInterval(() => setSpin((x) => x + 1), 120);
    return () => clearInterval(t);
  }, [busy]);

  const runTask = (what: 'gc' | 'verify'): void => {
    setModal({ kind: 'running', what, started: Date.now() });
    setMessage(undefined);
    const done = (text: string): void => {
      setModal(undefined);
      setMessage(text);
      reload(true);
    };
    tasks[what]().then(
      (r) => done(r.message),
      (e: unknown) => done(`${what} failed: ${errorText(e)}`),
    );
  };

  useInput((input, key) => {
    if (input === 'q' || (key.ctrl && input === 'c')) {
      computing.current?.abort();
      exit();
      return;
    }
    if (modal?.kind === 'running') return;
    if (modal?.kind === 'confirm-gc') {
      if (input === 'y' || input === 'Y') runTask('gc');
      else if (input === 'n' || input === 'N' || key.escape) setModal(undefined);
      return;
    }
    if (detailRoot !== undefined) {
      if (key.escape || key.backspace || key.delete || key.return || key.leftArrow) setDetailRoot(undefined);
      else if (input === 'r') reload(true);
      return;
    }
    const length = listLength({ panel, overview, details });
    const move = (delta: number): void => setSelected((s) => Math.max(0, Math.min(Math.max(0, length - 1), s + delta)));
    const switchPanel = (delta: number): void => {
      setPanel((p) => PANELS[(PANELS.indexOf(p) + delta + PANELS.length) % PANELS.length]!);
      setSelected(0);
    };
    const projects = overview?.projects ?? [];
    if (key.tab) switchPanel(key.shift ? -1 : 1);
    else if (key.rightArrow) switchPanel(1);
    else if (key.leftArrow) switchPanel(-1);
    else if (key.upArrow) move(-1);
    else if (key.downArrow) move(1);
    else if (key.pageUp) move(-(rows - 8));
    else if (key.pageDown) move(rows - 8);
    else if (key.return && panel === 'projects' && projects[selected]) setDetailRoot(projects[selected]!.root);
    else if (input === 'g') setModal({ kind: 'confirm-gc' });
    else if (input === 'v') runTask('verify');
    else if (input === 'r') {
      setMessage(undefined);
      reload(true);
    }
  });

  const lines = dashboardLines({
    home: store.home,
    overview,
    details,
    sharing,
    panel,
    selected,
    detailRoot,
    modal,
    message,
    loadError,
    spin,
    columns,
    rows,
    now: Date.now(),
  });
  return (
    <Box flexDirection="column">
      {lines.map((l, i) =>
        l.segments ? (
          <Text key={i} wrap="truncate">
            {l.segments.map((sg, j) => (
              <Text key={j} inverse={sg.inverse === true}>
                {sg.text}
              </Text>
            ))}
          </Text>
        ) : (
          <Text key={i} wrap="truncate" bold={l.bold === true} dimColor={l.dim === true} inverse={l.inverse === true} {...(l.color ? { color: l.color } : {})}>
            {l.text || ' '}
          </Text>
        ),
      )}
    </Box>
  );
}
