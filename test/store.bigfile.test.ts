// A file over 1 GiB streams through the hash into the store: the ingesting
// process's memory does not grow with the file, and the bytes come back whole.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, mkdirSync, openSync, closeSync, ftruncateSync, writeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { tempDirs } from './support/tmp.js';
import { veloBin } from './support/paths.js';
import { veloEnv } from './support/runVelo.js';

const tmp = tempDirs();
const SIZE = 1024 * 1024 * 1024 + 12345;

async function sha(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

it('ingests and materializes a file over 1 GiB with bounded memory', async () => {
  const dir = tmp();
  const src = join(dir, 'src');
  mkdirSync(src);
  const big = join(src, 'big.bin');
  // mostly sparse (reads as zeros), with real bytes at both ends and in the middle
  const fd = openSync(big, 'w');
  ftruncateSync(fd, SIZE);
  for (const at of [0, Math.floor(SIZE / 2), SIZE - 4096]) writeSync(fd, Buffer.alloc(4096, at % 251), 0, 4096, at);
  closeSync(fd);
  const home = join(dir, 'store');
  const rssFile = join(dir, 'maxrss');
  // GNU time writes the child's peak resident set size (KiB) to rssFile
  const out = execFileSync('/usr/bin/time', ['-o', rssFile, '-f', '%M', process.execPath, veloBin(), 'store', 'ingest', src], {
    env: veloEnv({ VELO_HOME: home, VELO_THREADS: '1' }),
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tree = out.trim();
  expect(tree).toMatch(/^[0-9a-f]{64}$/);
  const maxRssKiB = Number(readFileSync(rssFile, 'utf8').trim());
  // a 1 GiB file through a 1 MiB-chunk stream: far below the file's size
  expect(maxRssKiB).toBeLessThan(300 * 1024);
  const dest = join(dir, 'dest');
  execFileSync(process.execPath, [veloBin(), 'store', 'materialize', tree, dest, '--method', 'copy', '--no-register'], { env: veloEnv({ VELO_HOME: home }) });
  expect(statSync(join(dest, 'big.bin')).size).toBe(SIZE);
  expect(await sha(join(dest, 'big.bin'))).toBe(await sha(big));
}, 300_000);
