// SeaweedFS `weed mini` on 127.0.0.1 with free ports, one bucket and SigV4
// identities (one read-write key, one read-only key): the real S3 server the
// remote-tier tests (test/support/s3Server.ts) and benchmarks run against.
// Needs the TypeScript build (dist/) for the readiness probe's signed request.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const S3_KEYS = {
  rw: { accessKeyId: 'velo-test-rw', secretAccessKey: 'velo-test-rw-secret-0123456789' },
  ro: { accessKeyId: 'velo-test-ro', secretAccessKey: 'velo-test-ro-secret-0123456789' },
};

/** $VELO_WEED, else .tools/seaweedfs/bin/weed (scripts/install-seaweedfs.sh), else weed on PATH */
export function weedBinary() {
  if (process.env.VELO_WEED) return process.env.VELO_WEED;
  const local = join(repo, '.tools', 'seaweedfs', 'bin', 'weed');
  return existsSync(local) ? local : 'weed';
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const PORTS = ['master.port', 'master.port.grpc', 'volume.port', 'volume.port.grpc', 'filer.port', 'filer.port.grpc', 's3.port', 's3.port.grpc', 'admin.port', 'admin.port.grpc'];

/** Start weed mini; resolves once the bucket answers a signed request. */
export async function startWeed({ bucket = 'velo-test', readyTimeoutMs = 60_000 } = {}) {
  const t0 = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'velo-weed-'));
  const identity = (name, k, actions) => ({ name, credentials: [{ accessKey: k.accessKeyId, secretKey: k.secretAccessKey }], actions });
  writeFileSync(
    join(dir, 'identities.json'),
    JSON.stringify({ identities: [identity('rw', S3_KEYS.rw, ['Admin', 'Read', 'Write', 'List', 'Tagging']), identity('ro', S3_KEYS.ro, ['Read', 'List'])] }),
  );
  const ports = {};
  for (const n of PORTS) ports[n] = await freePort();
  const args = [
    'mini',
    `-dir=${join(dir, 'data')}`,
    '-ip=127.0.0.1',
    '-ip.bind=127.0.0.1',
    ...PORTS.map((n) => `-${n}=${ports[n]}`),
    '-s3.port.iceberg=0',
    '-s3.port.lance=0',
    '-webdav=false',
    '-admin.ui=false',
    `-s3.config=${join(dir, 'identities.json')}`,
    `-bucket=${bucket}`,
  ];
  let output = '';
  const child = spawn(weedBinary(), args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  let exited = false;
  child.on('exit', () => (exited = true));
  child.on('error', (e) => {
    exited = true;
    output += `\n${e.message}`;
  });
  const endpoint = `http://127.0.0.1:${ports['s3.port']}`;
  const stop = async () => {
    if (!exited) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const { S3Client } = await import(join(repo, 'dist', 'src', 'remote', 's3Client.js'));
  const client = new S3Client({ endpoint, bucket, region: 'us-east-1', pathStyle: true, credentials: S3_KEYS.rw, timeoutMs: 2000 });
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`weed mini exited before it was ready:\n${output.slice(-3000)}`);
    }
    try {
      for await (const _ of client.list('velo-ready-probe/')) break;
      break;
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`weed mini not ready after ${readyTimeoutMs} ms:\n${output.slice(-3000)}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  /** the AWS_* environment for one identity, or the read-write key with a wrong secret */
  const env = (who) => {
    const k = who === 'wrong' ? { ...S3_KEYS.rw, secretAccessKey: 'not-the-secret' } : S3_KEYS[who];
    return { AWS_ACCESS_KEY_ID: k.accessKeyId, AWS_SECRET_ACCESS_KEY: k.secretAccessKey, AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL: endpoint };
  };
  return { endpoint, bucket, env, pid: child.pid, log: () => output, stop, startMs: Math.round(performance.now() - t0) };
}
