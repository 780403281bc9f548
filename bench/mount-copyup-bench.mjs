#!/usr/bin/env node
// Benchmark: a copy-up mount (method fuse-rw: the FUSE view itself is
// writable and velo-mountd copies writes up into its upper dir) against the
// kernel overlay mount (overlayfs over the read-only FUSE view) of the same
// synthetic node_modules-shaped tree (native/test-support) plus one large
// file — the two ways `velo mount` gives a writable tree (copy-up where
// overlayfs cannot be mounted: without root, or refused).
//
//   node bench/mount-copyup-bench.mjs [--packages 1000] [--runs 5] [--big-mb 64] [--no-docs]
//
// Needs root (the overlay), /dev/fuse, dist/ built (npx tsc) and the native
// build (node native/build.mjs). Measures, medians of --runs runs:
//   - reads, warm page cache, on an untouched mount: find + stat every
//     entry, read every file, node requiring every package (the plain copy
//     as the reference);
//   - writes, each run on fresh mounts: create 2000 files under
//     node_modules/.cache, append a line to every package's index.js (the
//     first write to each is a copy-up), write 1 MiB into the middle of the
//     large file (a copy-up of all of it), delete a tenth of the packages
//     (rm -rf: whiteouts), then read back everything written, and read every
//     file of the tree again (now partly from the upper layer).
// Results are printed and written to docs/BENCHMARKS.md, section
// "## Mount: copy-up (fuse-rw)" (other sections kept).
import { execSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join, dirname } from 'node:path';
import { mountBenchSetup, writeDocSection, writePlainTree } from './lib/mountBenchSetup.mjs';

const { packages, runs, bigMb, writeDocs, velo } = await mountBenchSetup('mount-copyup-bench', { bigMb: 64, whyRoot: 'the overlay it compares with needs it' });
const { Store, ingestDir, mountProjection, unmountProjection } = velo;

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const now = () => performance.now();
const sh = (cmd) => execSync(cmd, { shell: '/bin/bash', stdio: ['ignore', 'ignore', 'inherit'] });
const fmt = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`);
const pkgDir = (p) => `node_modules/${p % 10 === 0 ? `@scope${p}/` : ''}pkg-${p}`;

const base = mkdtempSync(join(tmpdir(), 'velo-copyup-bench-'));
const home = join(base, 'home');
let store;

try {
  const plain = join(base, 'plain');
  const { files } = writePlainTree(plain, packages, bigMb);
  store = Store.open(home);
  const { tree } = await ingestDir(store, plain);
  console.log(`tree: ${files} files + big.bin ${bigMb} MiB; tree ${tree}`);
  const loadStart = loadavg();

  const mount = async (dest, copyUp) => {
    const m = await mountProjection(store, tree, dest, { within: dirname(dest), copyUp });
    if (m.method !== (copyUp ? 'fuse-rw' : 'overlay')) throw new Error(`expected ${copyUp ? 'fuse-rw' : 'overlay'}, got ${m.method}`);
    return m;
  };
  const kinds = [['overlay', false], ['copy-up', true]];

  // ---- reads on untouched mounts (and the plain copy), warm, interleaved
  const readViews = [['plain copy', plain]];
  for (const [name, copyUp] of kinds) readViews.push([name, (await mount(join(base, `read-${name}`), copyUp)).dest]);
  const requireAll = `const d = process.argv[1]; for (let p = 0; p < ${packages}; p++) require(d + '/${'node_modules/'}' + (p % 10 === 0 ? '@scope' + p + '/' : '') + 'pkg-' + p);`;
  const reads = [
    ['find + stat every entry', (d) => `find ${d}/node_modules -printf '%s %m %T@\\n' > /dev/null`],
    ['read every file (cat)', (d) => `find ${d}/node_modules -type f -print0 | xargs -0 cat > /dev/null`],
    [`node: require ${packages} packages`, (d) => `${process.execPath} -e "${requireAll}" ${d}`],
    [`read ${bigMb} MiB file (dd)`, (d) => `dd if=${d}/big.bin of=/dev/null bs=1M status=none`],
  ];
  const readRows = [];
  for (const [label, cmd] of reads) {
    const ms = Object.fromEntries(readViews.map(([n]) => [n, []]));
    for (const [, d] of readViews) sh(cmd(d)); // warm-up
    for (let i = 0; i < runs; i++) {
      for (const [n, d] of readViews) {
        const t = now();
        sh(cmd(d));
        ms[n].push(now() - t);
      }
    }
    const row = { label, ms: Object.fromEntries(Object.entries(ms).map(([n, v]) => [n, median(v)])) };
    readRows.push(row);
    console.log(`read  ${label.padEnd(30)} ` + readViews.map(([n]) => `${n} ${fmt(row.ms[n])}`).join('  '));
  }
  for (const [name] of kinds) await unmountProjection(join(base, `read-${name}`), { store });

  // ---- writes, then reads of what changed: fresh mounts every run
  const writeCache = `const fs = require('fs'); const d = process.argv[1] + '/node_modules/.cache/bench';
    for (let i = 0; i < 2000; i++) { const sub = d + '/' + (i % 40); if (i < 40) fs.mkdirSync(sub, { recursive: true }); fs.writeFileSync(sub + '/' + i + '.json', 'x'.repeat(1024)); }`;
  const appendAll = `const fs = require('fs'); const d = process.argv[1];
    for (let p = 0; p < ${packages}; p++) fs.appendFileSync(d + '/node_modules/' + (p % 10 === 0 ? '@scope' + p + '/' : '') + 'pkg-' + p + '/index.js', '// touched\\n');`;
  const doomed = Array.from({ length: Math.floor(packages / 10) }, (_, k) => pkgDir(k * 10 + 1)).join(' ');
  const writes = [
    ['create 2000 files in node_modules/.cache', (d) => `${process.execPath} -e "${writeCache}" ${d}`],
    [`append to ${packages} tree files (copy-up each)`, (d) => `${process.execPath} -e "${appendAll}" ${d}`],
    [`write 1 MiB into the ${bigMb} MiB file (copy-up)`, (d) => `dd if=/dev/zero of=${d}/big.bin bs=1M count=1 seek=${Math.floor(bigMb / 2)} conv=notrunc status=none`],
    [`rm -rf ${Math.floor(packages / 10)} packages`, (d) => `cd ${d} && rm -rf ${doomed}`],
    ['read back the 2000 new files', (d) => `find ${d}/node_modules/.cache -type f -print0 | xargs -0 cat > /dev/null`],
    ['read every file again (part now upper)', (d) => `find ${d}/node_modules -type f -print0 | xargs -0 cat > /dev/null`],
    [`read the ${bigMb} MiB file (now upper)`, (d) => `dd if=${d}/big.bin of=/dev/null bs=1M status=none`],
  ];
  const wms = Object.fromEntries(writes.map(([l]) => [l, Object.fromEntries(kinds.map(([n]) => [n, []]))]));
  for (let i = 0; i < runs; i++) {
    for (const [name, copyUp] of kinds) {
      const dest = join(base, `write-${name}-${i}`);
      await mount(dest, copyUp);
      sh('sync');
      for (const [label, cmd] of writes) {
        const t = now();
        sh(cmd(dest));
        wms[label][name].push(now() - t);
      }
      await unmountProjection(dest, { store });
    }
  }
  const writeRows = writes.map(([label]) => ({ label, ms: Object.fromEntries(kinds.map(([n]) => [n, median(wms[label][n])])) }));
  for (const r of writeRows) console.log(`write ${r.label.padEnd(44)} ` + kinds.map(([n]) => `${n} ${fmt(r.ms[n])}`).join('  '));
  const loadEnd = loadavg();

  const lines = [
    '## Mount: copy-up (fuse-rw)',
    '',
    `Command: \`node bench/mount-copyup-bench.mjs --packages ${packages} --runs ${runs} --big-mb ${bigMb}\` (as root), ` +
      `${new Date().toISOString().slice(0, 10)}, Linux ${release()}, ${cpus().length} CPUs, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, ext4; ` +
      `a shared, noisy machine (load average ${loadStart.map((x) => x.toFixed(2)).join(', ')} at the start, ` +
      `${loadEnd.map((x) => x.toFixed(2)).join(', ')} at the end). Medians of ${runs} runs.`,
    '',
    `Tree: the synthetic node_modules of native/test-support (${packages} packages, ${files} files) plus one ${bigMb} MiB file.`,
    '"overlay" is kernel overlayfs over the read-only FUSE view (what root gets); "copy-up" is the FUSE view itself,',
    'writable, its server copying writes up (what a user without root gets, forced here with `copyUp`).',
    '',
    '### Reads on an untouched mount (warm)',
    '',
    '| workload | plain copy | overlay | copy-up | copy-up vs overlay |',
    '|---|---|---|---|---|',
    ...readRows.map((r) => `| ${r.label} | ${fmt(r.ms['plain copy'])} | ${fmt(r.ms.overlay)} | ${fmt(r.ms['copy-up'])} | ${(r.ms['copy-up'] / r.ms.overlay).toFixed(2)}x |`),
    '',
    '### Writes, and reads of what changed (a fresh mount each run, steps in this order)',
    '',
    '| step | overlay | copy-up | copy-up vs overlay |',
    '|---|---|---|---|',
    ...writeRows.map((r) => `| ${r.label} | ${fmt(r.ms.overlay)} | ${fmt(r.ms['copy-up'])} | ${(r.ms['copy-up'] / r.ms.overlay).toFixed(2)}x |`),
    '',
  ];
  const section = lines.join('\n');
  console.log('\n' + section);
  if (writeDocs) console.log(`written to ${writeDocSection(/^## Mount: copy-up \(fuse-rw\)\s*$/m, section)}`);
} finally {
  try {
    if (store) for (const m of velo.listMounts(store)) await unmountProjection(m.dest, { store });
  } catch {
    /* best effort */
  }
  store?.close();
  rmSync(base, { recursive: true, force: true });
}
