// Child process behind test/support/registry.ts: a real verdaccio 6 on
// 127.0.0.1 (no uplinks: it never proxies to the internet) with a small
// recording proxy in front of it. The proxy is the URL tests use; it logs
// every request and can be told to fail tarball or packument requests.
//
// It runs in its own process so that a test blocking its event loop
// (spawnSync, execFileSync) can never stall the registry it is talking to.
// Run with plain `node` (type stripping): only erasable TypeScript here, and
// no relative imports.
//
// Protocol (IPC): the child sends {type:'ready', url, upstreamUrl, startMs}
// once listening, then answers {id, type, ...} requests with {id, ok, result}.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';

export type RequestKind = 'packument' | 'tarball' | 'other';

export interface RegistryRequest {
  /** Order of arrival, from 1. */
  seq: number;
  method: string;
  /** Path and query as the client sent it, e.g. `/@velo-fx%2fhello`. */
  url: string;
  kind: RequestKind;
  /** Package name the request is about (decoded), or null. */
  name: string | null;
  /** Status sent to the client; null while in flight or for a hung request. */
  status: number | null;
  /** What the proxy did instead of forwarding, if a failure rule matched. */
  failure: FailureMode['mode'] | null;
  /** The Accept header: `application/vnd.npm.install-v1+json` means an abbreviated packument. */
  accept: string | null;
}

export type FailureMode =
  | { mode: 'status'; status: number }
  | { mode: 'hang' }
  | { mode: 'reset' }
  | { mode: 'tamper' }
  | { mode: 'truncate' };

export type FailureRule = FailureMode & {
  /** Which requests fail; default 'tarball'. */
  on?: RequestKind | 'any';
  /** Only requests about this package (e.g. '@velo-fx/hello'). */
  name?: string;
  /** Fail this many matching requests, then pass through again; default: all. */
  times?: number;
};

export type ControlMessage =
  | { id: number; type: 'requests' }
  | { id: number; type: 'clearRequests' }
  | { id: number; type: 'setFailure'; rule: FailureRule | null }
  | { id: number; type: 'stop' };

export interface ServerOptions {
  storage: string;
  configDir: string;
}

const require = createRequire(import.meta.url);

// `/-/...` are registry API endpoints; `/<name>/-/<file>.tgz` are tarballs;
// `/<name>` or `/@scope%2fname` (or `/@scope/name`) are packuments.
export function classify(method: string, rawUrl: string): { kind: RequestKind; name: string | null } {
  const path = decodeURIComponent((rawUrl.split('?')[0] ?? '').replace(/^\/+/, ''));
  if (path.startsWith('-/') || path === '') return { kind: 'other', name: null };
  const tarball = /^((?:@[^/]+\/)?[^/@][^/]*)\/-\/[^/]+\.tgz$/.exec(path);
  if (tarball) return { kind: method === 'GET' ? 'tarball' : 'other', name: tarball[1] ?? null };
  const packument = /^((?:@[^/]+\/)?[^/@][^/]*)$/.exec(path);
  if (packument) return { kind: method === 'GET' ? 'packument' : 'other', name: packument[1] ?? null };
  return { kind: 'other', name: null };
}

// Flip one character inside the data of the last non-empty regular file of a
// gzipped tar: the archive stays valid, only its bytes (and so its integrity)
// change.
export function tamperTarball(tgz: Buffer): Buffer {
  const tar = Buffer.from(gunzipSync(tgz));
  let target = -1;
  let targetSize = 0;
  for (let off = 0; off + 512 <= tar.length; ) {
    const header = tar.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const size = parseInt(header.subarray(124, 136).toString('ascii').replace(/\0.*$/s, '').trim() || '0', 8);
    const type = String.fromCharCode(header[156] ?? 0);
    if ((type === '0' || type === '\0') && size > 0) {
      target = off + 512;
      targetSize = size;
    }
    off += 512 + Math.ceil(size / 512) * 512;
  }
  if (target < 0) throw new Error('tamperTarball: no regular file with content in the tarball');
  for (let i = target; i < target + targetSize; i++) {
    const b = tar[i] ?? 0;
    if ((b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39)) {
      tar[i] = b === 0x58 ? 0x59 : 0x58; // 'X' (or 'Y' if it already was 'X')
      return gzipSync(tar, { level: 9 });
    }
  }
  tar[target] = (tar[target] ?? 0) ^ 0x01;
  return gzipSync(tar, { level: 9 });
}

async function startVerdaccio(opts: ServerOptions): Promise<http.Server> {
  const { runServer } = require('verdaccio') as { runServer: (config: unknown) => Promise<http.Server> };
  const config = {
    self_path: `${opts.configDir}/config.yaml`,
    storage: opts.storage,
    // No uplinks at all: an unknown package is a 404, never a trip to npmjs.org.
    uplinks: {},
    packages: {
      '**': { access: '$all', publish: '$all', unpublish: '$all' },
    },
    auth: { htpasswd: { file: `${opts.configDir}/htpasswd`, max_users: -1 } },
    log: { type: 'stdout', format: 'json', level: 'warn' },
    web: { enable: false },
    server: { keepAliveTimeout: 60 },
    max_body_size: '100mb',
    publish: { allow_offline: true },
  };
  const app = await runServer(config);
  await new Promise<void>((resolve, reject) => {
    app.once('error', reject);
    app.listen(0, '127.0.0.1', () => resolve());
  });
  return app;
}

function startProxy(upstreamPort: number): {
  server: http.Server;
  sockets: Set<Socket>;
  log: RegistryRequest[];
  setRule: (rule: FailureRule | null) => void;
  clear: () => void;
} {
  let log: RegistryRequest[] = [];
  let seq = 0;
  let rule: (FailureRule & { left: number }) | null = null;
  const sockets = new Set<Socket>();
  const agent = new http.Agent({ keepAlive: true });

  const matchRule = (kind: RequestKind, name: string | null): FailureMode | null => {
    if (!rule || rule.left <= 0) return null;
    const on = rule.on ?? 'tarball';
    if (on !== 'any' && on !== kind) return null;
    if (rule.name !== undefined && rule.name !== name) return null;
    rule.left -= 1;
    return rule;
  };

  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const { kind, name } = classify(method, url);
    const accept = typeof req.headers.accept === 'string' ? req.headers.accept : null;
    const entry: RegistryRequest = { seq: ++seq, method, url, kind, name, status: null, failure: null, accept };
    log.push(entry);
    const failure = matchRule(kind, name);
    entry.failure = failure?.mode ?? null;

    if (failure?.mode === 'status') {
      entry.status = failure.status;
      const body = JSON.stringify({ error: `velo test registry: injected ${failure.status}` });
      res.writeHead(failure.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      req.resume();
      return;
    }
    if (failure?.mode === 'hang') {
      req.resume(); // never answer; the socket is destroyed on stop
      return;
    }
    if (failure?.mode === 'reset') {
      req.socket.destroy();
      return;
    }

    const upstream = http.request(
      {
        host: '127.0.0.1',
        port: upstreamPort,
        method,
        path: url,
        // Keep the client's Host header: verdaccio builds tarball URLs from it,
        // so packuments point back at this proxy.
        headers: req.headers,
        agent,
      },
      (up) => {
        const status = up.statusCode ?? 502;
        if (failure?.mode === 'truncate' && status === 200) {
          // the full length announced, half the body sent, then the connection dropped
          const chunks: Buffer[] = [];
          up.on('data', (c: Buffer) => chunks.push(c));
          up.on('end', () => {
            const body = Buffer.concat(chunks);
            const headers = { ...up.headers };
            delete headers['transfer-encoding'];
            entry.status = status;
            res.writeHead(status, { ...headers, 'content-length': body.length });
            res.write(body.subarray(0, Math.floor(body.length / 2)), () => setTimeout(() => req.socket.destroy(), 20));
          });
          return;
        }
        if (failure?.mode === 'tamper' && status === 200) {
          const chunks: Buffer[] = [];
          up.on('data', (c: Buffer) => chunks.push(c));
          up.on('end', () => {
            let body: Buffer;
            try {
              body = tamperTarball(Buffer.concat(chunks));
            } catch (err) {
              entry.status = 500;
              res.writeHead(500, { 'content-type': 'text/plain' });
              res.end(String(err));
              return;
            }
            const headers = { ...up.headers };
            delete headers['content-length'];
            delete headers['transfer-encoding'];
            delete headers.etag;
            entry.status = status;
            res.writeHead(status, { ...headers, 'content-length': body.length });
            res.end(body);
          });
          return;
        }
        entry.status = status;
        res.writeHead(status, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', (err) => {
      entry.status = 502;
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`velo test registry proxy: ${err.message}`);
    });
    req.pipe(upstream);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  return {
    server,
    sockets,
    get log() {
      return log;
    },
    setRule: (next) => {
      rule = next ? { ...next, left: next.times ?? Number.POSITIVE_INFINITY } : null;
    },
    clear: () => {
      log = [];
    },
  } as const;
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const opts = JSON.parse(process.argv[2] ?? '{}') as ServerOptions;
  const verdaccio = await startVerdaccio(opts);
  const upstreamPort = (verdaccio.address() as AddressInfo).port;
  const proxy = startProxy(upstreamPort);
  await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', () => resolve()));
  const port = (proxy.server.address() as AddressInfo).port;

  const stop = async (): Promise<void> => {
    for (const socket of proxy.sockets) socket.destroy();
    proxy.server.close();
    verdaccio.closeAllConnections?.();
    await new Promise<void>((resolve) => verdaccio.close(() => resolve()));
  };

  process.on('message', (raw) => {
    const msg = raw as ControlMessage;
    const reply = (result: unknown): void => {
      process.send?.({ id: msg.id, ok: true, result });
    };
    switch (msg.type) {
      case 'requests':
        reply(proxy.log);
        break;
      case 'clearRequests':
        proxy.clear();
        reply(null);
        break;
      case 'setFailure':
        proxy.setRule(msg.rule);
        reply(null);
        break;
      case 'stop':
        void stop().then(() => {
          reply(null);
          process.disconnect?.();
          process.exit(0);
        });
        break;
    }
  });
  // The parent went away (test worker killed): do not outlive it.
  process.on('disconnect', () => process.exit(0));

  process.send?.({
    type: 'ready',
    url: `http://127.0.0.1:${port}/`,
    upstreamUrl: `http://127.0.0.1:${upstreamPort}/`,
    startMs: performance.now() - t0,
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`velo test registry failed to start: ${String((err as Error)?.stack ?? err)}\n`);
    process.exit(1);
  });
}
