// A loopback relay to the public npm registry: GETs to http://127.0.0.1:PORT/…
// are answered from https://registry.npmjs.org/… . The remote bench seeds its
// warm remote through it with `--registry=<relay>`, stops it, and then runs
// the fresh machines with the same `--registry`: their npm configuration is
// the seeding machine's (as on a CI fleet) and the registry is unreachable.
//
// It runs in its own process (serverProcess.mjs).
import { createServer } from 'node:http';
import { request } from 'node:https';
import { fileURLToPath } from 'node:url';
import { startServerProcess } from './serverProcess.mjs';

const UPSTREAM = 'registry.npmjs.org';

function serve() {
  const server = createServer((req, res) => {
    const headers = { ...req.headers, host: UPSTREAM };
    const up = request({ host: UPSTREAM, method: req.method, path: req.url, headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`http://127.0.0.1:${server.address().port}/\n`));
}

/** Start the relay: { url, stop() } (after stop() its port refuses connections). */
export function startRegistryRelay() {
  return startServerProcess(fileURLToPath(import.meta.url));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) serve();
