// Read every file under some directories once, so a "warm cache" sample
// really starts warm. Needed on this VM: its DAMON reclaim pages out file
// cache that nobody touched for about a minute, so a tree written (or read)
// a few samples ago may be half on disk again.
import { closeSync, openSync, readSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const buf = Buffer.allocUnsafe(8 * 1024 * 1024);

export function prewarm(...dirs) {
  let files = 0;
  let bytes = 0;
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const fd = openSync(p, 'r');
        try {
          for (let n, off = 0; (n = readSync(fd, buf, 0, buf.length, off)) > 0; off += n) bytes += n;
        } finally {
          closeSync(fd);
        }
        files++;
      }
    }
  };
  for (const d of dirs) walk(d);
  return { files, bytes };
}
