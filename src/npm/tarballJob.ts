/**
 * One registry tarball, from URL to store: downloaded with retries and its
 * integrity checked as it streams (src/fetch/download.ts), and ingested as
 * it arrives (ingestTarball.ts: gunzip, tar, BLAKE3, object writes). Runs in
 * a tarball worker thread (tarballWorker.ts) or, without workers, in the
 * main thread. The package's tree is serialized here and written, and its
 * key recorded, only by
 * the main thread and only after this resolved: a tarball that failed its
 * integrity or arrived short names nothing in the store.
 */
import type { Readable } from 'node:stream';
import type { VeloErrorCode } from '../errors.js';
import { VeloError } from '../errors.js';
import { download } from '../fetch/download.js';
import type { AgentConfig, HttpPool } from '../fetch/httpPool.js';
import type { RetryPolicy } from '../fetch/retry.js';
import { serializeTree } from '../store/treeFormat.js';
import type { Store } from '../store/store.js';
import { ingestTarball, type TarballIngest } from './ingestTarball.js';

export interface TarballJobSetup {
  home: string;
  agent: AgentConfig;
  retry: RetryPolicy;
}

export interface TarballJob {
  id: number;
  url: string;
  headers: Record<string, string>;
  integrity: string;
  /** name@version, for messages */
  pkgid: string;
  /** package-relative bin targets of every lockfile entry sharing this tarball */
  bins: string[];
  tls?: { cert?: string; key?: string };
  /** encode the package's objects for a remote that lacks it (ingestTarball's `encode`) */
  encode?: boolean;
}

export type TarballReply =
  | { id: number; ok: true; notFound: false; ingest: Omit<TarballIngest, 'tree'>; tree: Uint8Array; attempts: number; downloadBytes: number }
  | { id: number; ok: true; notFound: true; attempts: number }
  | { id: number; ok: false; error: { code: VeloErrorCode; message: string; hint?: string | undefined } };

/** Download and ingest one tarball; the tree is handed back serialized (docs/FORMAT.md), not written. */
export async function runTarballJob(store: Store, http: HttpPool, retry: RetryPolicy, job: TarballJob): Promise<TarballReply> {
  try {
    let tree: Uint8Array = new Uint8Array();
    const out = await download(http, { url: job.url, headers: job.headers, integrity: job.integrity, what: job.pkgid, tls: job.tls }, retry, (body: Readable) =>
      ingestTarball(store, body, {
        pkgid: job.pkgid,
        bins: new Set(job.bins),
        encode: job.encode === true,
        writeTree: (entries) => {
          tree = serializeTree(entries);
          return '';
        },
      }),
    );
    if (out.status === 'not-found') return { id: job.id, ok: true, notFound: true, attempts: out.attempts };
    const { tree: _tree, ...ingest } = out.value;
    return { id: job.id, ok: true, notFound: false, ingest, tree, attempts: out.attempts, downloadBytes: out.bytes };
  } catch (err) {
    const e =
      err instanceof VeloError
        ? { code: err.code, message: err.message, hint: err.hint }
        : { code: 'IO' as const, message: `${job.pkgid}: ${err instanceof Error ? err.message : String(err)}` };
    return { id: job.id, ok: false, error: e };
  }
}
