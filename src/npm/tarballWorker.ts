/**
 * A tarball worker thread (see fetchTarballs.ts): downloads and ingests the
 * tarballs the main thread sends, several at once, and posts back each
 * package's tree entries. The main thread writes the trees and keys and
 * counts the new objects from each reply, so this thread's Store never
 * touches the SQLite index.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { HttpPool } from '../fetch/httpPool.js';
import { Store } from '../store/store.js';
import { runTarballJob, type TarballJob, type TarballJobSetup } from './tarballJob.js';
import { blobsBuffer } from '../remote/remoteLayout.js';

const port = parentPort;
if (!port) throw new Error('tarballWorker.js runs as a worker thread');
const setup = workerData as TarballJobSetup;
const store = Store.open(setup.home);
// counted by the main thread from each reply's newObjects/newBytes
store.noteNewObject = () => undefined;
store.flushCounters = () => undefined;
const http = new HttpPool(setup.agent);
port.on('message', (job: TarballJob) => {
  void runTarballJob(store, http, setup.retry, job).then((reply) => {
    // the encoded objects (one buffer, HashedObjectEncoder.finish) are moved, not copied
    const encoded = reply.ok && !reply.notFound ? reply.ingest.encoded && blobsBuffer(reply.ingest.encoded.blobs) : undefined;
    port.postMessage(reply, encoded ? [encoded] : undefined);
  });
});
