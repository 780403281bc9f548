/**
 * One remote as an install sees it: the S3 client, the settings, and the
 * rule that a remote failure is never worse than no remote. The first
 * failure (unreachable, refused, timed out) stops every further request and
 * leaves ONE warning; damaged or missing content leaves one warning too.
 * Callers read `warnings` and go on with the registry.
 */
import { RemoteError, S3Client } from './s3Client.js';
import type { RemoteSettings } from './remoteConfig.js';

export class Remote {
  readonly settings: RemoteSettings;
  readonly client: S3Client;
  #failure: { message: string; during: 'fetch' | 'publish' } | undefined;
  #damaged: string[] = [];
  /** what the remote is being used for now (named in the warning) */
  phase: 'fetch' | 'publish' = 'fetch';

  constructor(settings: RemoteSettings, client: S3Client = new S3Client(settings.location)) {
    this.settings = settings;
    this.client = client;
  }

  get prefix(): string {
    return this.settings.prefix;
  }

  /** what identifies this remote in the local publish record */
  get id(): string {
    return `${this.settings.location.endpoint} ${this.settings.url}`;
  }

  get usable(): boolean {
    return this.#failure === undefined;
  }

  /** Run a request; a RemoteError stops the remote for this run and is remembered once. */
  async guard<T>(fn: () => Promise<T>): Promise<T | undefined> {
    if (this.#failure !== undefined) return undefined;
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof RemoteError)) throw err;
      this.#failure ??= { message: err.message, during: this.phase };
      return undefined;
    }
  }

  /** Content that was missing or did not match its digest (remembered for one warning). */
  damaged(what: string): void {
    this.#damaged.push(what);
  }

  get damagedCount(): number {
    return this.#damaged.length;
  }

  /** At most one warning per kind of trouble, for the CLI to print. */
  warnings(): string[] {
    const out: string[] = [];
    const f = this.#failure;
    if (f !== undefined) {
      out.push(
        f.during === 'fetch'
          ? `remote ${this.settings.url} not used: ${f.message}; packages came from the registry`
          : `remote ${this.settings.url}: publishing stopped: ${f.message}; the next install resumes it`,
      );
    }
    if (this.#damaged.length > 0) {
      const n = this.#damaged.length;
      out.push(`remote ${this.settings.url}: ${n} item${n === 1 ? '' : 's'} missing or not matching ${n === 1 ? 'its' : 'their'} digest (first: ${this.#damaged[0]}); those packages came from the registry`);
    }
    return out;
  }
}
