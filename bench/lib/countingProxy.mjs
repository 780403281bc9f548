// A loopback HTTP proxy in front of an S3 endpoint that counts what passes:
// requests and response bytes, both by the kind of object (keys/, packs/,
// objects/). Requests are forwarded unchanged — the Host header included —
// so SigV4 signatures made for the proxy's address still verify at the
// server. For the lazy-mount test and bench: how many bytes did reading
// part of a tree download?
//
// It runs in its own process (startCountingProxy spawns this file): a test
// that reads a lazy mount synchronously blocks its own event loop while the
// mount's fetcher downloads through the proxy. GET /__counts on the proxy
// answers the counts as JSON; POST /__reset zeroes them.
import { createServer, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { startServerProcess } from './serverProcess.mjs';

function serve(target) {
  const to = new URL(target);
  const zero = () => ({ requests: 0, bytes: 0, byKind: { keys: 0, packs: 0, objects: 0, other: 0 }, requestsByKind: { keys: 0, packs: 0, objects: 0, other: 0 } });
  let counts = zero();
  const server = createServer((req, res) => {
    // the control answers close their connection: the caller often blocks in spawnSync for longer than
    // the server's keep-alive, and a pooled socket closed meanwhile fails its next fetch
    if (req.url === '/__counts') return res.writeHead(200, { connection: 'close' }).end(JSON.stringify(counts));
    if (req.url === '/__reset') {
      counts = zero();
      return res.writeHead(200, { connection: 'close' }).end('{}');
    }
    const kind = /\/(keys|packs|objects)\//.exec(req.url ?? '')?.[1] ?? 'other';
    counts.requests++;
    counts.requestsByKind[kind]++;
    const up = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.on('data', (chunk) => {
        counts.bytes += chunk.length;
        counts.byKind[kind] += chunk.length;
      });
      upRes.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`http://127.0.0.1:${server.address().port}\n`));
}

/** Start a proxy process to `target` (http://host:port): { endpoint, counts(), reset(), stop() }. */
export async function startCountingProxy(target) {
  const { url: endpoint, stop } = await startServerProcess(fileURLToPath(import.meta.url), [target]);
  return {
    endpoint,
    counts: async () => (await fetch(`${endpoint}/__counts`)).json(),
    reset: async () => void (await fetch(`${endpoint}/__reset`, { method: 'POST' })).body?.cancel(),
    stop,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) serve(process.argv[2]);
