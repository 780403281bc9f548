/**
 * velo cargo <build|check|clippy|run|test> [cargo args] — the real cargo,
 * with target/ restored from the store before it and stored after it.
 *
 * Only light modules are imported up front: an unchanged target dir (the
 * no-op path) reads a state file, hashes Cargo.lock, asks rustc -vV and
 * starts cargo. The store, materialize and the freshness check load only
 * when something is to be restored or stored.
 */
import type { Remote } from '../src/remote/remote.js';
import { openConfiguredRemote, takeRemoteFlag } from './remoteContext.js';
import { buildProfileDirs, parseCargoArgs, type CargoInvocation } from '../src/cargo/cargoArgs.js';
import { isNoOp, planCargoRun, type CargoPlan } from '../src/cargo/plan.js';
import { spawnCargo } from '../src/cargo/spawnCargo.js';
import { locateWorkspace } from '../src/cargo/workspace.js';
import { remapSetting } from '../src/cargo/remapPathPrefix.js';
import { config, projectConfigFile } from './context.js';
import { err, formatBytes, formatMs, out, renderError, type Io } from './io.js';

const USAGE = `Usage: velo cargo <build|check|clippy|run|test> [cargo args] [--force] [--velo-incremental] [--projection link|mount]
                  [--remote URL|--no-remote]
       velo cargo clean [cargo args]

Runs the real cargo with the same arguments, output and exit code. Before it,
a missing target dir (or one velo made for an older Cargo.lock, toolchain or
set of flags) is restored from the newest snapshot in the store for this
build: Cargo.lock, rustc -vV, profile, --target, features, RUSTFLAGS. After
a successful run the target dir is stored as a new snapshot (incremental/
left out); a failed run stores nothing. Other cargo subcommands run as they
are; \`velo cargo clean\` first unmounts a mounted target dir.

  --force              replace a target dir velo did not make, or one that
                       changed since velo last saw it
  --velo-incremental   keep incremental/ in the snapshot
  --projection P       link (default): the target dir is a copy (a reflink
                       where the filesystem clones); mount: a read-only FUSE
                       view of the snapshot, writable (overlayfs as root,
                       the mount server's copy-up otherwise), so clones share
                       one copy (Linux with FUSE; else copied, saying why).
                       Default from VELO_PROJECTION, velo.json, config.
  --remote URL         restore from / publish snapshots to this shared store on
                       S3 (s3://bucket/prefix); default VELO_REMOTE, "remote"
                       in velo.json / config (docs/REMOTE.md)
  --no-remote          use no remote this time

A snapshot holds the units the current build uses (earlier dependency
versions stay in target/ but not in the store); debug and release stay
side by side. A target/ plain cargo made is adopted (cargo builds in it,
velo stores it); any other dir velo did not make is refused (exit 16).

  cargo.remapPathPrefix (velo.json "cargo": {"remapPathPrefix": "."}, the
  user config, or VELO_CARGO_REMAP_PATH_PREFIX): give rustc
  --remap-path-prefix=<workspace root>=<value>, so debug info does not name
  the clone that compiled a restored binary (targets become per clone).

See docs/CARGO.md for how restored targets are kept honest with cargo.`;

function short(digest: string): string {
  return digest.slice(0, 12);
}

function say(io: Io, plan: CargoPlan | undefined, text: string): void {
  if (plan?.inv.quiet) return;
  err(io, `velo: ${text}`);
}

/** Run cargo; a signal sent to velo goes on to cargo, and velo waits for it. */
async function runRealCargo(args: string[], cwd: string, io: Io, env: NodeJS.ProcessEnv = io.env): Promise<number> {
  const running = spawnCargo(args, { cwd, env, stdio: { stdout: io.stdout, stderr: io.stderr } });
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const forward = (sig: NodeJS.Signals): void => {
    running.child.kill(sig);
  };
  for (const s of signals) process.on(s, forward);
  try {
    return await running.exit;
  } finally {
    for (const s of signals) process.off(s, forward);
  }
}

export async function runCargo(argv: string[], io: Io): Promise<number> {
  const { args, flag: remoteFlag } = takeRemoteFlag(argv);
  if (args.length === 0 || (args.length === 1 && ['--help', '-h', 'help'].includes(args[0]!))) {
    out(io, USAGE);
    return args.length === 0 ? 2 : 0;
  }
  let plan: CargoPlan | undefined;
  let projection: 'link' | 'mount' = 'link';
  let remote: Remote | undefined;
  try {
    const inv = parseCargoArgs(args);
    if (inv.subcommand === 'clean') return await runClean(inv, io);
    if (!inv.snapshotSubcommand) return await runRealCargo(inv.cargoArgs, io.cwd, io);
    plan = await planCargoRun(args, io.cwd, io.env, { remapTo: remapSetting(io.env, projectConfigFile(io)) });
    const cfg = config(io);
    projection = inv.projection ?? cfg.projection;
    if (!isNoOp(plan)) {
      const { prepareTarget } = await import('../src/cargo/prepareTarget.js');
      if (!plan.targetPresent) {
        const { isVeloMount } = await import('../src/cargo/targetMount.js');
        if (isVeloMount(plan.location.targetDir)) {
          say(io, plan, `${plan.location.targetDir} is an empty velo mount: plain \`cargo clean\` or \`rm -rf\` empties a mounted target but cannot remove it (a mount point); \`velo cargo clean\` unmounts it first`);
        }
      }
      const shown = plan;
      remote = await openConfiguredRemote(io, cfg, remoteFlag);
      const prep = await prepareTarget(plan, {
        home: cfg.home,
        method: cfg.method,
        projection,
        remote,
        onMountToCopy: (cost) =>
          say(io, shown, `${shown.location.targetDir} is mounted; the ${projection} projection replaces the mount with a copy of the snapshot: ${cost.files} files, ${formatBytes(cost.bytes)} on disk (\`--projection mount\` keeps it a mount)`),
      });
      for (const w of remote?.warnings() ?? []) err(io, `velo: warning: ${w}`);
      if (prep.action === 'none' && prep.reason === 'adopted') {
        say(io, plan, `adopted ${plan.location.targetDir} (made by cargo): cargo builds in it as it is; velo stores it after a successful build`);
      }
      if (prep.action === 'restored') {
        const r = prep.restore;
        // units of this build's profile dirs, one per unit: what this cargo run rebuilds first
        const { invalidatedUnits } = await import('../src/cargo/freshness.js');
        const rebuild = invalidatedUnits(r.freshness.invalidated, buildProfileDirs(plan.inv));
        if (r.mountNote) say(io, plan, `projection mount: ${r.mountNote}`);
        say(
          io,
          plan,
          `restored ${plan.location.targetDir} from snapshot ${short(prep.snapshot.tree)} ` +
            `(${r.files} files, ${formatBytes(r.bytes)}, ${r.method}) in ${formatMs(r.ms)}` +
            (rebuild > 0 ? `; ${rebuild} unit(s) changed since and will rebuild` : ''),
        );
      }
    }
  } catch (e) {
    return renderError(io, e);
  }
  const code = await runRealCargo(plan.inv.cargoArgs, io.cwd, io, plan.env).catch((e: unknown) => renderError(io, e));
  try {
    // a no-op build: nothing to store, and nothing heavy to load
    if (code === 0 && (await import('../src/cargo/unchangedTarget.js')).targetUnchanged(plan)) return code;
    const cfg = config(io);
    const { recordTarget } = await import('../src/cargo/recordTarget.js');
    remote ??= await openConfiguredRemote(io, cfg, remoteFlag);
    const warned = new Set(remote?.warnings() ?? []);
    const rec = await recordTarget(plan, code, { home: cfg.home, method: cfg.method, projection, remote });
    for (const w of remote?.warnings() ?? []) if (!warned.has(w)) err(io, `velo: warning: ${w}`);
    if (rec.action === 'stored') {
      const r = rec.result;
      const stale = r.staleUnits > 0 ? `; ${r.staleUnits} unit(s) no current build uses left out, ${formatBytes(r.staleBytes)}` : '';
      if (rec.reused) say(io, plan, `${plan.location.targetDir} is snapshot ${short(rec.snapshot.tree)}, already stored for this build (${r.files} files, ${formatBytes(r.logicalBytes)}${stale}) in ${formatMs(rec.ms)}`);
      else {
        say(
          io,
          plan,
          `stored ${plan.location.targetDir} as snapshot ${short(rec.snapshot.tree)} ` +
            `(${r.files} files, ${formatBytes(r.logicalBytes)}; ${r.newObjects} new objects, ${formatBytes(r.newBytes)}${stale}) in ${formatMs(rec.ms)}`,
        );
      }
      const m = rec.remount;
      if (m?.mounted) say(io, plan, `mounted ${plan.location.targetDir} on snapshot ${short(rec.snapshot.tree)} (${m.replaced === 'directory' ? 'was a directory' : 'writable layer emptied'}) in ${formatMs(m.ms)}`);
      else if (m) say(io, plan, `projection mount: ${m.reason}: ${plan.location.targetDir} stays as it is`);
    } else if (rec.action === 'registered') {
      say(
        io,
        plan,
        `${plan.location.targetDir} is unchanged: snapshot ${short(rec.snapshot.tree)} ` +
          `${rec.reused ? 'is already stored' : 'now also stands'} for this build (${rec.snapshot.files} files, ${formatBytes(rec.snapshot.logicalBytes)}) in ${formatMs(rec.ms)}`,
      );
    } else if (rec.action === 'none' && rec.reason === 'separate-build-dir') {
      say(io, plan, 'not stored: this project uses a separate build dir (build.build-dir), which velo cargo does not snapshot');
    }
  } catch (e) {
    err(io, `velo: warning: the build is done, but its target dir was not stored:`);
    renderError(io, e);
  }
  return code;
}

/** cargo clean options that clean part of the target dir: the target dir itself stays */
const PARTIAL_CLEAN = /^(-p|--package|-r|--release|--profile|--target|--doc|-n|--dry-run|--workspace)(=|$)|^-p./;

/**
 * velo cargo clean: a whole clean of a mounted target unmounts it first
 * (its writable layer goes with it), then cargo removes the empty
 * directory. Plain cargo would empty the mount and then fail to remove the
 * mount point (EBUSY). A partial clean (-p, --release, --doc, …) goes
 * through the overlay as it is.
 */
async function runClean(inv: CargoInvocation, io: Io): Promise<number> {
  const whole = !inv.cargoArgs.slice(inv.cargoArgs.indexOf('clean') + 1).some((a) => PARTIAL_CLEAN.test(a));
  if (whole) {
    let targetDir: string | undefined;
    try {
      targetDir = locateWorkspace(io.cwd, { manifestPath: inv.manifestPath, targetDir: inv.targetDir, env: io.env }).targetDir;
    } catch {
      targetDir = undefined; // cargo says what is wrong
    }
    const { isVeloMount, unmountTarget } = await import('../src/cargo/targetMount.js');
    if (targetDir && isVeloMount(targetDir) && (await unmountTarget(undefined, targetDir)) && !inv.quiet) {
      err(io, `velo: unmounted ${targetDir} (its writable layer is deleted; the snapshots stay in the store)`);
    }
  }
  return runRealCargo(inv.cargoArgs, io.cwd, io);
}

/** The same entry point under the name every cli/*Command.ts exports. */
export const run = runCargo;
