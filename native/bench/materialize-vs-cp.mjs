// Benchmark: native materialize (hardlink) vs `cp -al` on a synthetic
// node_modules-shaped tree. Usage: node native/bench/materialize-vs-cp.mjs [packages=1000] [runs=5]
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeModulesEntries, writeObjects } from '../test-support/syntheticTree.mjs';
import { writeTree } from '../test-support/treeWriter.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const addon = createRequire(import.meta.url)(join(here, '..', 'build', 'velo_native.node'));
const packages = Number(process.argv[2] ?? 1000);
const runs = Number(process.argv[3] ?? 5);

const base = mkdtempSync(join(tmpdir(), 'velo-bench-'));
const objects = join(base, 'objects');
mkdirSync(objects);
const entries = nodeModulesEntries({ packages });
writeObjects(objects, entries);
const tree = writeTree(entries);
const ref = join(base, 'ref');
mkdirSync(ref);
const made = await addon.materialize(tree, objects, ref, 'hardlink', 4);
console.log(`tree: ${made.files} files, ${made.dirs} dirs, ${made.symlinks} symlinks, ${(made.bytes / 1e6).toFixed(1)} MB`);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// Destinations are kept until the end: deleting thousands of directories
// right before a run makes ext4's inode allocator skip "recently deleted"
// inodes, which slows every mkdir (cp -al and ours alike) and hides the
// difference being measured. Methods are interleaved round by round.
const contenders = [
  ['cp -al', async (dest) => execFileSync('cp', ['-al', ref, dest])],
  ...[1, 2, 4].map((threads) => [`materialize hardlink t=${threads}`, async (dest) => {
    mkdirSync(dest);
    await addon.materialize(tree, objects, dest, 'hardlink', threads);
  }]),
];
const times = new Map(contenders.map(([label]) => [label, []]));
let k = 0;
for (let round = 0; round < runs; round++) {
  for (const [label, fn] of contenders) {
    const dest = join(base, `dest-${k++}`);
    execFileSync('sync');
    const t0 = process.hrtime.bigint();
    await fn(dest);
    times.get(label).push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
}
for (const [label, ms] of times) {
  console.log(`${label.padEnd(28)} median ${median(ms).toFixed(0).padStart(5)} ms   runs ${ms.map((x) => x.toFixed(0)).join(' ')}`);
}
rmSync(base, { recursive: true, force: true });
