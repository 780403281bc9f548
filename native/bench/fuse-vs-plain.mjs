// Benchmark: the FUSE mount vs a plain directory (a materialized copy) of the
// same synthetic node_modules-shaped tree, warm page cache.
// Usage: node native/bench/fuse-vs-plain.mjs [packages=1000] [runs=5]
import { execSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeModulesEntries, writeObjects, OBJECT_MTIME_S } from '../test-support/syntheticTree.mjs';
import { writeTree } from '../test-support/treeWriter.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const addon = createRequire(import.meta.url)(join(here, '..', 'build', 'velo_native.node'));
const packages = Number(process.argv[2] ?? 1000);
const runs = Number(process.argv[3] ?? 5);

const base = mkdtempSync(join(tmpdir(), 'velo-fbench-'));
const objects = join(base, 'objects');
mkdirSync(objects);
const entries = nodeModulesEntries({ packages });
// one large file for throughput
const big = randomBytes(256 * 1024 * 1024);
const bigEntry = { path: 'big.bin', kind: 'file', size: big.length, data: big };
entries.push(bigEntry);
writeObjects(objects, entries);
const tree = writeTree(entries);
writeFileSync(join(base, 'tree'), tree);
const plain = join(base, 'plain');
mkdirSync(plain);
await addon.materialize(tree, objects, plain, 'copy', 4);
const mnt = join(base, 'mnt');
mkdirSync(mnt);
let t0 = process.hrtime.bigint();
const handle = addon.mount(join(base, 'tree'), objects, mnt, {});
const mountMs = Number(process.hrtime.bigint() - t0) / 1e6;
console.log(`tree: ${entries.length} entries; mount() took ${mountMs.toFixed(1)} ms`);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
function time(cmd) {
  execSync(cmd, { shell: '/bin/bash' }); // warm up
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    execSync(cmd, { shell: '/bin/bash' });
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return median(ms);
}
const cases = [
  ['find + stat every entry', (d) => `find ${d}/node_modules -printf '%s %m %T@\\n' > /dev/null`],
  ['read every file (cat)', (d) => `find ${d}/node_modules -type f -print0 | xargs -0 cat > /dev/null`],
  ['read 256 MiB file (dd)', (d) => `dd if=${d}/big.bin of=/dev/null bs=1M status=none`],
  ['node require 200 pkgs', (d) => `node -e "for (let p = 1; p < 1000; p += 5) if (p % 10) require('${d}/node_modules/pkg-' + p)"`],
];
try {
  for (const [label, cmd] of cases) {
    const a = time(cmd(plain));
    const b = time(cmd(mnt));
    console.log(`${label.padEnd(26)} plain ${a.toFixed(0).padStart(5)} ms   mount ${b.toFixed(0).padStart(5)} ms   ratio ${(b / a).toFixed(2)}`);
  }
} finally {
  addon.unmount(handle);
  rmSync(base, { recursive: true, force: true });
}
