#!/usr/bin/env node
// How a publish's encoding policy (src/remote/remoteLayout.ts EncodePolicy:
// the zstd level) trades CPU for
// upload bytes, on a real installed tree: every package directory of
// node_modules (default: an install of bench/npm-1207 under the given dir) is
// encoded as a publish encodes a package (BlobEncoder: small files in frames),
// each policy in turn, rounds interleaved; CPU of this thread, medians.
// Usage: node bench/remote-encode-bench.mjs <node_modules> [--rounds N]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median, repo } from './lib/npm1207.mjs';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { rounds: { type: 'string', default: '3' } } });
const { BlobEncoder } = await import(join(repo, 'dist', 'src', 'remote', 'remoteLayout.js'));

/** each package directory's files (contents), nested node_modules as packages of their own */
function packages(nm) {
  const out = [];
  const pkg = (dir) => {
    const files = [];
    const walk = (d) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) {
          if (e.name === 'node_modules') scan(p);
          else walk(p);
        } else if (e.isFile() || (e.isSymbolicLink() && statSync(p).isFile())) files.push(readFileSync(p));
      }
    };
    walk(dir);
    out.push(files);
  };
  const scan = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      const p = join(d, e.name);
      if (e.name.startsWith('@')) for (const s of readdirSync(p)) pkg(join(p, s));
      else if (statSync(p).isDirectory()) pkg(p);
    }
  };
  scan(nm);
  return out;
}

const pkgs = packages(positionals[0]);
const bytesIn = pkgs.flat().reduce((n, b) => n + b.length, 0);
console.log(`${pkgs.length} packages, ${pkgs.flat().length} files, ${(bytesIn / 1e6).toFixed(1)} MB`);
const policies = [1, -1, -3, -7].map((level) => ({ level }));
const cpu = policies.map(() => []);
const out = policies.map(() => 0);
for (let r = 0; r < Number(values.rounds); r++) {
  policies.forEach((policy, k) => {
    const t0 = process.cpuUsage();
    let bytes = 0;
    for (const files of pkgs) {
      const enc = new BlobEncoder(policy);
      files.forEach((f, i) => f.length > 0 && enc.add(i, f));
      enc.close();
      for (const b of enc.blobs) bytes += b.bytes.length;
    }
    const t = process.cpuUsage(t0);
    cpu[k].push((t.user + t.system) / 1000);
    out[k] = bytes;
  });
}
policies.forEach((p, k) =>
  console.log(`zstd level ${String(p.level).padStart(2)}: ${median(cpu[k]).toFixed(0).padStart(5)} ms CPU, ${(out[k] / 1e6).toFixed(1)} MB (${((out[k] / bytesIn) * 100).toFixed(1)}% of ${(bytesIn / 1e6).toFixed(1)} MB)`),
);
