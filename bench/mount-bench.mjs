#!/usr/bin/env node
// Benchmark: the mount projection against a hardlink farm and a plain copy
// of the same synthetic node_modules-shaped tree (native/test-support:
// 1000 packages ≈ 36k files, every package requirable), plus one large file.
//
//   node bench/mount-bench.mjs [--packages 1000] [--runs 5] [--big-mb 256] [--no-docs]
//
// Needs root (overlayfs, drop_caches), /dev/fuse, dist/ built (npx tsc) and
// the native addon and mount server (node native/build.mjs). In one run it measures:
//   - time to project the tree: mountProjection (overlay, and read-only) vs
//     materialize by hardlink (and by copy)
//   - find + stat of every entry, reading every file, reading the large file,
//     a `node -e` that requires every package — on the mount (overlay), on
//     the mount's FUSE view alone, on the same two with FUSE passthrough
//     forced (VELO_FUSE_PASSTHROUGH=1; for this tree of small files the
//     server chooses splice by itself), on the hardlink farm, on the plain
//     copy; warm page cache, and dropped (`sync; echo 3 > /proc/sys/vm/drop_caches`
//     before every run)
// Medians of --runs runs; ratios against the plain copy. Results are printed
// and written to docs/BENCHMARKS.md, section "## Mount" (other sections kept).
import { execFileSync, execSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem, release } from 'node:os';
import { join, dirname } from 'node:path';
import { mountBenchSetup, repo, writeDocSection, writePlainTree } from './lib/mountBenchSetup.mjs';

const { packages, runs, bigMb, writeDocs, velo } = await mountBenchSetup('mount-bench', { bigMb: 256, whyRoot: 'overlayfs and drop_caches need it' });
const { Store, ingestDir, materialize, mountProjection, unmountProjection } = velo;

/** What the numbers come from (structural; the same on every run). */
const NOTES = `### Notes

- A mount is served by velo-mountd, a small C program (native/src/mountd.c)
  over the same FUSE code as the addon: it starts in about a millisecond,
  maps and checks the tree, mounts the FUSE view and the overlay (two
  \`mount(2)\` calls) and reports \`ready\` (about 6 ms for this tree). The
  rest is velo's own work: reading and hashing the tree, the store lease and
  mount lock, the mount record, starting the server (a fork of the Node
  process) and the index update. The mountProjection rows are measured
  inside this script; the \`velo mount\` rows run the command.
- How the FUSE view serves reads is decided per mount, at the kernel's INIT:
  **FUSE passthrough** (we mount \`/dev/fuse\` ourselves as root and patch
  the INIT and OPEN replies libfuse 3.14 sends; the kernel then reads the
  store object itself, no request, the object's page cache) or **splice
  with zero-message opens** (\`open\` answers ENOSYS once; from then on the
  kernel opens files without asking and keeps their FUSE page cache).
  They exclude each other: with passthrough every open is a request (the
  kernel needs the backing file from the open reply), about 40 µs here,
  which is what the "passthrough forced" columns pay on 36,000 small files.
  So the server picks passthrough only when the tree's files average at
  least 256 KiB (a cargo target dir), splice otherwise (node_modules,
  site-packages); \`VELO_FUSE_PASSTHROUGH=0/1\` overrides.
- Cold metadata through the overlay (dropped caches) costs more than the
  FUSE view alone: overlayfs looks every name up in its upper layer too.
- The machine is shared: other builds and test suites ran at the same time,
  so single numbers move by ±30 % between runs; the views are measured
  interleaved to keep ratios fair.
`;

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const now = () => performance.now();
const sh = (cmd) => execSync(cmd, { shell: '/bin/bash', stdio: ['ignore', 'ignore', 'inherit'] });
const dropCaches = () => sh('sync; echo 3 > /proc/sys/vm/drop_caches');

const base = mkdtempSync(join(tmpdir(), 'velo-mount-bench-'));
const home = join(base, 'home');
let store;
const mounted = [];

function cleanup() {
  for (const d of mounted.splice(0)) {
    try {
      execSync(`umount -l ${d} 2>/dev/null || true`);
    } catch {
      /* gone */
    }
  }
  store?.close();
  rmSync(base, { recursive: true, force: true });
}
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});

try {
  // ---- the tree: written as plain files (what npm would leave), then ingested
  const plain = join(base, 'plain');
  let t = now();
  /** written in a function of its own, so the entries' bytes and the big buffer are garbage afterwards:
   * the processes this one starts (a mount's server) then fork from a small process, as from velo */
  const writePlain = () => {
    const t = writePlainTree(plain, packages, bigMb);
    return { files: t.files + 1, dirs: t.dirs };
  };
  const { files, dirs } = writePlain();
  console.log(`tree: ${files} files, ${dirs} dirs, + big.bin ${bigMb} MiB; written in ${((now() - t) / 1000).toFixed(1)} s`);
  store = Store.open(home);
  t = now();
  const { tree } = await ingestDir(store, plain);
  console.log(`ingested in ${((now() - t) / 1000).toFixed(1)} s: tree ${tree}`);

  // ---- projecting: mount vs hardlink vs copy, fresh destination every run
  const loadStart = loadavg();
  const projection = { mount: [], mountRo: [], cli: [], cliWall: [], hardlink: [], copy: [] };
  const veloCli = join(repo, 'dist', 'cli', 'velo.js');
  const cliEnv = { ...process.env, VELO_HOME: home };
  sh('sync');
  for (let i = 0; i < runs; i++) {
    for (const [key, overlay] of [['mount', true], ['mountRo', false]]) {
      const dest = join(base, `${key}${i}`);
      sh('sync');
      t = now();
      await mountProjection(store, tree, dest, { within: dirname(dest), overlay });
      projection[key].push(now() - t);
      await unmountProjection(dest, { store });
    }
    // the command itself: its own figure (in-process, what `velo mount` reports) and its wall time with Node's start-up
    const cliDest = join(base, `cli${i}`);
    sh('sync');
    t = now();
    const r = JSON.parse(execFileSync(process.execPath, [veloCli, 'mount', tree, cliDest, '--json'], { env: cliEnv, encoding: 'utf8' }));
    projection.cliWall.push(now() - t);
    projection.cli.push(r.ms);
    execFileSync(process.execPath, [veloCli, 'umount', cliDest], { env: cliEnv, stdio: 'ignore' });
    for (const method of ['hardlink', 'copy']) {
      const d = join(base, `${method}${i}`);
      sh('sync');
      t = now();
      await materialize(store, tree, d, { within: dirname(d), method });
      projection[method].push(now() - t);
      rmSync(d, { recursive: true, force: true });
    }
  }
  const proj = Object.fromEntries(Object.entries(projection).map(([k, v]) => [k, median(v)]));
  const projRuns = Object.fromEntries(Object.entries(projection).map(([k, v]) => [k, v.map((x) => x.toFixed(0)).join(', ')]));
  console.log(`project: mount ${proj.mount.toFixed(0)} ms [${projRuns.mount}], read-only ${proj.mountRo.toFixed(0)} ms, velo mount ${proj.cli.toFixed(0)} ms [${projRuns.cli}] (wall ${proj.cliWall.toFixed(0)} ms), hardlink ${proj.hardlink.toFixed(0)} ms, copy ${proj.copy.toFixed(0)} ms`);

  // ---- the six views of the same tree
  const mnt = join(base, 'mnt');
  const m = await mountProjection(store, tree, mnt, { within: dirname(mnt) });
  mounted.push(mnt, join(home, 'mounts', m.id, 'lower'));
  const mntPt = join(base, 'mnt-pt');
  process.env.VELO_FUSE_PASSTHROUGH = '1'; // the server inherits it
  const mPt = await mountProjection(store, tree, mntPt, { within: dirname(mntPt) });
  delete process.env.VELO_FUSE_PASSTHROUGH;
  mounted.push(mntPt, join(home, 'mounts', mPt.id, 'lower'));
  const farm = join(base, 'farm');
  await materialize(store, tree, farm, { within: dirname(farm), method: 'hardlink' });
  const views = [
    ['plain copy', plain],
    ['hardlink farm', farm],
    ['mount (overlay)', mnt],
    ['FUSE view alone', join(home, 'mounts', m.id, 'lower')],
    ['mount, passthrough forced', mntPt],
    ['FUSE view, passthrough forced', join(home, 'mounts', mPt.id, 'lower')],
  ];
  const requireAll = `const d = process.argv[1]; let n = 0; for (let p = 0; p < ${packages}; p++) { require(d + '/node_modules/' + (p % 10 === 0 ? '@scope' + p + '/' : '') + 'pkg-' + p); n++; } if (n !== ${packages}) process.exit(1);`;
  const workloads = [
    ['find + stat every entry', (d) => `find ${d}/node_modules -printf '%s %m %T@\\n' > /dev/null`],
    ['read every file (cat)', (d) => `find ${d}/node_modules -type f -print0 | xargs -0 cat > /dev/null`],
    [`node: require ${packages} packages`, (d) => `${process.execPath} -e "${requireAll}" ${d}`],
    [`read ${bigMb} MiB file (dd)`, (d) => `dd if=${d}/big.bin of=/dev/null bs=1M status=none`],
  ];
  // runs are interleaved across the views (run 1 on every view, then run 2, …)
  // so that the machine's noise spreads over all of them alike
  sh('sync');
  const results = [];
  for (const cache of ['warm', 'dropped']) {
    for (const [label, cmd] of workloads) {
      const row = { cache, label, ms: {} };
      const ms = Object.fromEntries(views.map(([n]) => [n, []]));
      if (cache === 'warm') for (const [, dir] of views) sh(cmd(dir)); // warm-up
      for (let i = 0; i < runs; i++) {
        for (const [name, dir] of views) {
          if (cache === 'dropped') dropCaches();
          const s = now();
          sh(cmd(dir));
          ms[name].push(now() - s);
        }
      }
      for (const [name] of views) row.ms[name] = median(ms[name]);
      results.push(row);
      const base0 = row.ms['plain copy'];
      console.log(
        `${cache.padEnd(7)} ${label.padEnd(30)} ` + views.map(([n]) => `${n} ${row.ms[n].toFixed(0)} ms (${(row.ms[n] / base0).toFixed(2)}x)`).join('  '),
      );
    }
  }

  const loadEnd = loadavg();
  // ---- report
  const cmdline = `node bench/mount-bench.mjs --packages ${packages} --runs ${runs} --big-mb ${bigMb}`;
  const fmt = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`);
  // ---- against the issue's targets (the overlay is what `velo mount` and --projection mount give)
  const row = (cache, label) => results.find((r) => r.cache === cache && r.label.startsWith(label)).ms;
  const ratio = (cache, label, view) => row(cache, label)[view] / row(cache, label)['plain copy'];
  const within = (x, limit) => (x <= limit ? 'met' : 'not met');
  const warm = ['find + stat', 'read every file', 'node: require'].map((l) => [l, ratio('warm', l, 'mount (overlay)')]);
  const ddSplice = 1 / ratio('warm', `read ${bigMb} MiB`, 'mount (overlay)');
  const ddPt = 1 / ratio('warm', `read ${bigMb} MiB`, 'mount, passthrough forced');
  const targets = [
    '### Against the targets',
    '',
    `- Mount under 50 ms: **${within(proj.mount, 50)}**, ${fmt(proj.mount)} (mountProjection), ${fmt(proj.cli)} as reported by \`velo mount\`.`,
    `- Warm stat / read / require within 1.3x of the plain tree, on the mount (overlay): ` +
      warm.map(([l, x]) => `${l} ${x.toFixed(2)}x (${within(x, 1.3)})`).join(', ') + '.',
    `- Large-file read throughput at least 90% of the plain tree (warm): ${(ddSplice * 100).toFixed(0)}% on the mount as the server sets ` +
      `it up for this tree (splice: **${ddSplice >= 0.9 ? 'met' : 'not met'}**), ${(ddPt * 100).toFixed(0)}% with FUSE passthrough ` +
      `(**${ddPt >= 0.9 ? 'met' : 'not met'}**), which a tree of large files gets by itself but which costs this tree's small files ` +
      `${ratio('warm', 'read every file', 'mount, passthrough forced').toFixed(2)}x on read every file and ` +
      `${ratio('warm', 'node: require', 'mount, passthrough forced').toFixed(2)}x on require.`,
    '',
  ];
  console.log(targets.join('\n'));

  const lines = [
    '## Mount',
    '',
    `Command: \`${cmdline}\` (as root), ${new Date().toISOString().slice(0, 10)}, Linux ${release()}, ` +
      `${cpus().length} CPUs, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, ext4; a shared, noisy machine ` +
      `(load average ${loadStart.map((x) => x.toFixed(2)).join(', ')} at the start, ${loadEnd.map((x) => x.toFixed(2)).join(', ')} at the end). Medians of ${runs} runs.`,
    '',
    `Tree: the synthetic node_modules of native/test-support (${packages} packages, ${files - 1} files, every package requirable)`,
    `plus one ${bigMb} MiB file, written as plain files (the "plain copy", what npm leaves) and ingested into a fresh store.`,
    '',
    '### Projecting the tree (fresh destination each run)',
    '',
    '| method | time | vs mount |',
    '|---|---|---|',
    `| mountProjection (velo-mountd + FUSE view + overlay) | ${fmt(proj.mount)} (runs: ${projRuns.mount} ms) | 1.00x |`,
    `| mountProjection, read-only (velo-mountd + FUSE view) | ${fmt(proj.mountRo)} (runs: ${projRuns.mountRo} ms) | ${(proj.mountRo / proj.mount).toFixed(2)}x |`,
    `| \`velo mount <tree> <dir> --json\`: the time it reports (its work, after Node's start-up) | ${fmt(proj.cli)} (runs: ${projRuns.cli} ms) | ${(proj.cli / proj.mount).toFixed(2)}x |`,
    `| the same command, wall time (Node's start-up and velo's imports included) | ${fmt(proj.cliWall)} | ${(proj.cliWall / proj.mount).toFixed(2)}x |`,
    `| materialize by hardlink | ${fmt(proj.hardlink)} | ${(proj.hardlink / proj.mount).toFixed(1)}x |`,
    `| materialize by copy | ${fmt(proj.copy)} | ${(proj.copy / proj.mount).toFixed(1)}x |`,
    '',
    '### Using the tree',
    '',
    'Ratios are against the plain copy. "mount (overlay)" is what `velo mount` and `--projection mount` give;',
    '"FUSE view alone" is its read-only lower layer (what a non-root mount gives). Both serve this tree by splice with',
    'zero-message opens (the server\'s choice for small files); the "passthrough forced" columns are the same two with',
    '`VELO_FUSE_PASSTHROUGH=1` (the server\'s choice when files average ≥ 256 KiB).',
    '"dropped": `sync; echo 3 > /proc/sys/vm/drop_caches` before every run.',
    '',
    `| cache | workload | ${views.map(([n]) => n).join(' | ')} |`,
    `|---|---|${views.map(() => '---').join('|')}|`,
    ...results.map((r) => `| ${r.cache} | ${r.label} | ${views.map(([n]) => `${fmt(r.ms[n])} (${(r.ms[n] / r.ms['plain copy']).toFixed(2)}x)`).join(' | ')} |`),
    '',
    ...targets,
    ...NOTES.split('\n'),
  ];
  const section = lines.join('\n');
  console.log('\n' + section);
  if (writeDocs) console.log(`written to ${writeDocSection(/^## Mount\s*$/m, section)}`);
} finally {
  for (const d of ['mnt', 'mnt-pt']) {
    if (!existsSync(join(base, d))) continue;
    try {
      await unmountProjection(join(base, d), { store });
    } catch {
      /* already gone */
    }
  }
  cleanup();
}
