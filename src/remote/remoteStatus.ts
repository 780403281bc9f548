/**
 * `velo remote status`: what is where — the remote's keys (with their
 * trees), lockfile bundles, project records, packs and loose objects (counts and bytes, from listings), and what this store has
 * recorded as published there.
 */
import type { Store } from '../store/store.js';
import { PublishRecord } from './publishRecord.js';
import type { Remote } from './remote.js';

export const REMOTE_AREAS = ['keys', 'bundles', 'projects', 'packs', 'objects'] as const;
export type RemoteArea = (typeof REMOTE_AREAS)[number];

export interface RemoteStatus {
  url: string;
  endpoint: string;
  mode: 'read' | 'readwrite';
  /** per area: how many objects and bytes the remote holds */
  remote: Record<RemoteArea, { count: number; bytes: number }>;
  totalBytes: number;
  /** what this store recorded as published to this remote */
  publishedByThisStore: { keys: number; objects: number };
}

export async function remoteStatus(store: Store, remote: Remote): Promise<RemoteStatus> {
  const areas = Object.fromEntries(REMOTE_AREAS.map((a) => [a, { count: 0, bytes: 0 }])) as RemoteStatus['remote'];
  for (const area of REMOTE_AREAS) {
    for await (const o of remote.client.list(`${remote.prefix}${area}/`)) {
      areas[area].count++;
      areas[area].bytes += o.size;
    }
  }
  const record = new PublishRecord(store, remote.id);
  try {
    return {
      url: remote.settings.url,
      endpoint: remote.settings.location.endpoint,
      mode: remote.settings.mode,
      remote: areas,
      totalBytes: REMOTE_AREAS.reduce((n, a) => n + areas[a].bytes, 0),
      publishedByThisStore: record.counts(),
    };
  } finally {
    record.close();
  }
}
