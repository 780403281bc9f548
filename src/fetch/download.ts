/**
 * One tarball download: GET with retries (retry.ts), the body checked
 * against the lockfile's integrity as it streams and handed to `consume`
 * (which ingests it) at the same time. The download counts only when the
 * body arrived whole and matched: a body cut short is tried again, a body
 * that arrived whole but does not match is an INTEGRITY error. `consume`'s
 * result is returned only then, so its caller records nothing for bytes
 * that were not proven.
 */
import type { IncomingMessage } from 'node:http';
import { Transform, type Readable } from 'node:stream';
import { VeloError } from '../errors.js';
import type { HttpPool } from './httpPool.js';
import { integrityCheck } from './integrity.js';
import { isRetriableError, isRetriableStatus, retryDelay, sleep, type RetryPolicy } from './retry.js';

export interface DownloadRequest {
  url: string;
  headers: Record<string, string>;
  integrity: string;
  /** name@version, for messages */
  what: string;
  tls?: { cert?: string | undefined; key?: string | undefined };
}

export type DownloadOutcome<T> = { status: 'ok'; value: T; attempts: number; bytes: number } | { status: 'not-found'; attempts: number };

class Truncated extends Error {
  readonly code = 'ETRUNCATED';
}

/**
 * Read the body through the integrity check into `consume`. The check runs
 * when the last byte arrived and before the stream consume reads ends, so
 * a consumer that commits only at the end of its input (ingestTarball)
 * never commits bytes that were cut short (Truncated) or do not match
 * (INTEGRITY).
 */
async function receive<T>(res: IncomingMessage, req: DownloadRequest, consume: (body: Readable) => Promise<T>): Promise<{ value: T; bytes: number }> {
  const check = integrityCheck(req.integrity);
  if (!check) throw new VeloError('INTEGRITY', `${req.what}: the lockfile's integrity (${req.integrity}) names no algorithm velo can check`);
  const expected = Number(res.headers['content-length'] ?? NaN);
  let bytes = 0;
  let cut: Error | undefined;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      check.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
    flush(done) {
      if (cut || !res.complete || (Number.isFinite(expected) && bytes !== expected)) {
        return done(new Truncated(`${req.what}: the download was cut short (${bytes} of ${Number.isFinite(expected) ? expected : '?'} bytes)`));
      }
      if (!check.matches()) {
        return done(
          new VeloError('INTEGRITY', `${req.what}: the downloaded tarball does not match the lockfile's integrity (${req.integrity})`, {
            hint: 'the registry served different bytes than the lockfile recorded; nothing was installed',
          }),
        );
      }
      done();
    },
  });
  res.on('error', (err) => {
    cut = err;
    tap.destroy(new Truncated(`${req.what}: the download was cut short (${err.message})`));
  });
  res.on('aborted', () => {
    cut ??= new Truncated('aborted');
  });
  res.on('close', () => {
    if (!res.complete) cut ??= new Truncated('the connection closed early');
  });
  res.pipe(tap);
  try {
    return { value: await consume(tap), bytes };
  } catch (err) {
    // judged before we close the response ourselves: a tarball damaged because
    // the body stopped early is a cut (tried again); one refused while its body
    // was still arriving (a hostile entry, a bomb) is the content's own fault
    const stoppedEarly = cut !== undefined;
    res.destroy();
    if (err instanceof Truncated) throw err;
    if (stoppedEarly) throw new Truncated(`${req.what}: the download was cut short (${(err as Error).message})`);
    throw err;
  }
}

export async function download<T>(pool: HttpPool, req: DownloadRequest, policy: RetryPolicy, consume: (body: Readable) => Promise<T>): Promise<DownloadOutcome<T>> {
  for (let attempt = 1; ; attempt++) {
    let lastProblem: string;
    try {
      const res = await pool.get(req.url, req.headers, req.tls);
      const status = res.statusCode ?? 0;
      if (status === 200) {
        const { value, bytes } = await receive(res, req, consume);
        return { status: 'ok', value, attempts: attempt, bytes };
      }
      res.resume();
      if (status === 404) return { status: 'not-found', attempts: attempt };
      if (!isRetriableStatus(status)) {
        throw new VeloError('NETWORK', `${req.what}: the registry answered ${status} for ${req.url}`, {
          hint: status === 401 || status === 403 ? 'check the auth token for this registry in your .npmrc' : undefined,
        });
      }
      lastProblem = `the registry answered ${status}`;
      if (attempt > policy.retries) {
        throw new VeloError('NETWORK', `${req.what}: the registry answered ${status} for ${req.url} (${attempt} ${attempt === 1 ? 'attempt' : 'attempts'})`, {
          hint: 'the registry is failing; try again later',
        });
      }
    } catch (err) {
      if (err instanceof VeloError) throw err;
      if (!(err instanceof Truncated) && !isRetriableError(err)) {
        const e = err as { code?: string; message?: string };
        throw new VeloError('NETWORK', `${req.what}: cannot download it from ${req.url} (${e.code ?? 'error'}: ${e.message ?? String(err)})`, { cause: err });
      }
      lastProblem = (err as Error).message;
    }
    if (attempt > policy.retries) {
      throw new VeloError('NETWORK', `${req.what}: cannot download it from ${req.url} (${attempt} ${attempt === 1 ? 'attempt' : 'attempts'}: ${lastProblem})`, {
        hint: 'the registry is unreachable or failing; try again later, or check registry/proxy settings in your .npmrc',
      });
    }
    await sleep(retryDelay(policy, attempt));
  }
}
