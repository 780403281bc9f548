#!/usr/bin/env node
// What `velo npm ci --force` pays for hashing every object it lays out:
// materialize of one synthetic node_modules-shaped tree (bench/lib/syntheticTree.mjs)
// by hardlink, with and without the hash check (store.hashBeforeLayout),
// interleaved, medians and the ratio. Build first (tsc).
//
//   node bench/faults/force-hash-bench.mjs [--files N] [--mb M] [--runs R]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTree } from '../lib/syntheticTree.mjs';
import { Store } from '../../dist/src/store/store.js';
import { ingestDir } from '../../dist/src/store/addFilesFromDir.js';
import { materialize } from '../../dist/src/projection/materialize.js';

const argv = process.argv.slice(2);
const arg = (flag, dflt) => (argv.includes(flag) ? Number(argv[argv.indexOf(flag) + 1]) : dflt);
const files = arg('--files', 10_000);
const mb = arg('--mb', 100);
const runs = arg('--runs', 5);

const dir = mkdtempSync(join(tmpdir(), 'velo-force-hash-'));
try {
  writeTree(join(dir, 'src'), { seed: 3, files, bytes: mb * 1_000_000 });
  const home = join(dir, 'store');
  const { tree } = await ingestDir(Store.open(home), join(dir, 'src'));
  const times = { stat: [], hash: [] };
  for (let i = 0; i < runs; i++) {
    for (const mode of ['stat', 'hash']) {
      const store = Store.open(home); // a new process's view: nothing hashed yet
      store.hashBeforeLayout = mode === 'hash';
      const t0 = performance.now();
      await materialize(store, tree, join(dir, 'p', 'node_modules'), { method: 'hardlink', within: join(dir, 'p') });
      times[mode].push(performance.now() - t0);
      store.close();
    }
  }
  const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const stat = med(times.stat);
  const hash = med(times.hash);
  process.stdout.write(`${files} files, ${mb} MB, ${runs} runs each, interleaved\n`);
  process.stdout.write(`materialize (size/mtime guard):   ${stat.toFixed(0)} ms median\n`);
  process.stdout.write(`materialize (BLAKE3 every object): ${hash.toFixed(0)} ms median (${(hash / stat).toFixed(2)}x)\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
