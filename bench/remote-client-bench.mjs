#!/usr/bin/env node
// Which S3 client velo uses, by measurement: velo's own SigV4 signer on Node's
// fetch (src/remote/sigv4.ts + s3Client.ts) against @aws-sdk/client-s3, in one
// run against the same local SeaweedFS (weed mini, bench/lib/weed.mjs):
// size on disk, start-up (a fresh node importing the client), and PUT/GET of
// many small objects and of a few large ones at the same concurrency.
// Medians of N rounds, the two clients alternating.
// Usage: node bench/remote-client-bench.mjs --sdk DIR [--runs N]
//   DIR holds node_modules/@aws-sdk/client-s3 (npm install --prefix DIR @aws-sdk/client-s3);
//   it is measured, never a dependency of velo.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { S3_KEYS, startWeed } from './lib/weed.mjs';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { sdk: { type: 'string' }, runs: { type: 'string', default: '3' } } });
const runs = Number(values.runs);
const sdkDir = values.sdk;
if (!sdkDir || !existsSync(join(sdkDir, 'node_modules', '@aws-sdk', 'client-s3'))) {
  console.error('usage: node bench/remote-client-bench.mjs --sdk DIR   (DIR: npm install --prefix DIR @aws-sdk/client-s3)');
  process.exit(2);
}
const sdkEntry = join(sdkDir, 'node_modules', '@aws-sdk', 'client-s3');
const veloEntry = join(repo, 'dist', 'src', 'remote', 's3Client.js');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const du = (...paths) => Number(execFileSync('du', ['-sb', '--total', ...paths], { encoding: 'utf8' }).trim().split('\n').pop().split('\t')[0]);

function importMs(entry) {
  const code = `const t=performance.now();await import(${JSON.stringify(pathToFileURL(entry).href)});console.log(performance.now()-t)`;
  const samples = [];
  for (let i = 0; i < 5; i++) samples.push(Number(spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' }).stdout));
  return median(samples);
}

async function pool(n, limit, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < n) await fn(next++);
  }));
}

const weed = await startWeed({ bucket: 'bench' });
try {
  const { S3Client: VeloS3 } = await import(veloEntry);
  const sdk = await import(pathToFileURL(join(sdkEntry, 'dist-cjs', 'index.js')).href);
  const velo = new VeloS3({ endpoint: weed.endpoint, bucket: 'bench', region: 'us-east-1', pathStyle: true, credentials: S3_KEYS.rw, timeoutMs: 30_000 });
  const aws = new sdk.S3Client({ endpoint: weed.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3_KEYS.rw });
  const clients = {
    velo: { put: (k, b) => velo.put(k, b), get: (k) => velo.get(k) },
    'aws-sdk': {
      put: (k, b) => aws.send(new sdk.PutObjectCommand({ Bucket: 'bench', Key: k, Body: b })),
      get: async (k) => Buffer.from(await (await aws.send(new sdk.GetObjectCommand({ Bucket: 'bench', Key: k }))).Body.transformToByteArray()),
    },
  };
  const cases = [
    { name: '500 x 16 KiB', count: 500, size: 16 << 10 },
    { name: '8 x 8 MiB', count: 8, size: 8 << 20 },
  ];
  const results = {};
  for (let round = 0; round < runs; round++) {
    for (const [label, c] of Object.entries(clients)) {
      for (const k of cases) {
        const body = Buffer.alloc(k.size, round + 1);
        const t0 = performance.now();
        await pool(k.count, 16, (i) => c.put(`${label}/${round}/${k.size}/${i}`, body));
        const t1 = performance.now();
        await pool(k.count, 16, async (i) => {
          const got = await c.get(`${label}/${round}/${k.size}/${i}`);
          if (got.length !== k.size) throw new Error('short read');
        });
        const t2 = performance.now();
        const r = (results[`${label} ${k.name}`] ??= { put: [], get: [], bytes: k.count * k.size });
        r.put.push(t1 - t0);
        r.get.push(t2 - t1);
      }
    }
  }
  const sizeVelo = du(join(repo, 'dist', 'src', 'remote', 'sigv4.js'), veloEntry);
  const sizeSdk = du(join(sdkDir, 'node_modules'));
  console.log(`# S3 client: velo's signer on fetch vs @aws-sdk/client-s3 ${JSON.parse(execFileSync('node', ['-p', `JSON.stringify(require(${JSON.stringify(join(sdkEntry, 'package.json'))}).version)`], { encoding: 'utf8' }))} (weed mini on loopback, medians of ${runs}; 16 requests in flight)`);
  console.log(`size on disk: velo ${(sizeVelo / 1024).toFixed(1)} KiB (sigv4.js + s3Client.js, no dependencies); aws-sdk ${(sizeSdk / 1048576).toFixed(1)} MiB (node_modules)`);
  console.log(`import in a fresh node: velo ${importMs(veloEntry).toFixed(1)} ms; aws-sdk ${importMs(join(sdkEntry, 'dist-cjs', 'index.js')).toFixed(1)} ms`);
  for (const [name, r] of Object.entries(results)) {
    const mbps = (ms) => ((r.bytes / 1048576) / (ms / 1000)).toFixed(1);
    console.log(`${name.padEnd(22)} PUT ${median(r.put).toFixed(0).padStart(6)} ms (${mbps(median(r.put))} MiB/s)   GET ${median(r.get).toFixed(0).padStart(6)} ms (${mbps(median(r.get))} MiB/s)`);
  }
} finally {
  await weed.stop();
}
