/**
 * A small S3 client on Node's fetch and sigv4.ts: GET (whole or a byte
 * range), PUT, DELETE and ListObjectsV2 — all velo's remote tier needs.
 * Every request has a timeout; failures are RemoteError (a VeloError with
 * code NETWORK and the HTTP status, 0 when the server was not reached).
 */
import { VeloError } from '../errors.js';
import { signRequest, uriEncode, type Credentials } from './sigv4.js';

export interface S3Location {
  /** scheme://host[:port] of the S3 API */
  endpoint: string;
  bucket: string;
  region: string;
  /** path-style (endpoint/bucket/key) rather than virtual-hosted (bucket.endpoint/key) */
  pathStyle: boolean;
  credentials: Credentials | undefined;
  timeoutMs: number;
}

export class RemoteError extends VeloError {
  readonly status: number;
  constructor(message: string, status: number, cause?: unknown) {
    super('NETWORK', message, cause === undefined ? {} : { cause });
    this.status = status;
  }
}

export interface ListedObject {
  key: string;
  size: number;
  lastModified: number;
}

export class S3Client {
  readonly loc: S3Location;
  /** requests sent and bytes moved, for status and benchmarks */
  readonly stats = { requests: 0, bytesIn: 0, bytesOut: 0 };

  constructor(loc: S3Location) {
    this.loc = loc;
  }

  url(key: string, query?: Record<string, string>): URL {
    const ep = new URL(this.loc.endpoint);
    const path = this.loc.pathStyle ? `/${uriEncode(this.loc.bucket)}/${uriEncode(key, true)}` : `/${uriEncode(key, true)}`;
    const url = new URL(`${ep.protocol}//${this.loc.pathStyle ? ep.host : `${this.loc.bucket}.${ep.host}`}${path}`);
    // URLSearchParams encodes ' ' as '+', which S3 reads as '+': build the query by hand
    if (query) url.search = Object.entries(query).map(([k, v]) => `${uriEncode(k)}=${uriEncode(v)}`).join('&');
    return url;
  }

  async #send(method: string, key: string, opts: { query?: Record<string, string>; headers?: Record<string, string>; body?: Buffer } = {}): Promise<Response> {
    const url = this.url(key, opts.query);
    const base = { ...(opts.headers ?? {}) };
    if (opts.body) base['content-length'] = String(opts.body.length);
    const headers = this.loc.credentials ? signRequest({ method, url, headers: base, region: this.loc.region, credentials: this.loc.credentials }) : base;
    this.stats.requests++;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        ...(opts.body ? { body: opts.body as Uint8Array<ArrayBuffer> } : {}),
        signal: AbortSignal.timeout(this.loc.timeoutMs),
      });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const why = e.name === 'TimeoutError' ? `no answer within ${this.loc.timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
      throw new RemoteError(`${method} ${this.describe(key)}: ${why}`, 0, err);
    }
    if (opts.body) this.stats.bytesOut += opts.body.length;
    return res;
  }

  describe(key: string): string {
    return `s3://${this.loc.bucket}/${key}`;
  }

  async #fail(method: string, key: string, res: Response): Promise<never> {
    const text = await res.text().catch(() => '');
    const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
    const what = res.status === 403 ? 'access denied' : res.status === 404 ? 'not found' : `HTTP ${res.status}`;
    throw new RemoteError(`${method} ${this.describe(key)}: ${what}${code ? ` (${code})` : ''}`, res.status);
  }

  /** The object's bytes (or the byte range [start, end], inclusive), undefined when it does not exist. */
  async get(key: string, range?: { start: number; end: number }): Promise<Buffer | undefined> {
    const res = await this.#send('GET', key, range ? { headers: { range: `bytes=${range.start}-${range.end}` } } : {});
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    if (res.status !== 200 && res.status !== 206) return this.#fail('GET', key, res);
    let body: Buffer;
    try {
      body = Buffer.from(await res.arrayBuffer());
    } catch (err) {
      throw new RemoteError(`GET ${this.describe(key)}: ${(err as Error).message}`, 0, err);
    }
    this.stats.bytesIn += body.length;
    if (range && res.status === 200) body = body.subarray(range.start, range.end + 1); // a server that ignored Range
    return body;
  }

  async put(key: string, body: Buffer, contentType = 'application/octet-stream'): Promise<void> {
    const res = await this.#send('PUT', key, { body, headers: { 'content-type': contentType } });
    if (res.status !== 200) return this.#fail('PUT', key, res);
    await res.body?.cancel();
  }

  async delete(key: string): Promise<void> {
    const res = await this.#send('DELETE', key);
    if (res.status !== 204 && res.status !== 200 && res.status !== 404) return this.#fail('DELETE', key, res);
    await res.body?.cancel();
  }

  /** Every object under prefix (ListObjectsV2, 1000 a page). */
  async *list(prefix: string): AsyncGenerator<ListedObject> {
    let token: string | undefined;
    do {
      const query: Record<string, string> = { 'list-type': '2', prefix };
      if (token) query['continuation-token'] = token;
      const res = await this.#send('GET', '', { query });
      if (res.status !== 200) return this.#fail('LIST', prefix, res);
      const xml = await res.text();
      this.stats.bytesIn += xml.length;
      for (const m of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
        const body = m[1]!;
        const key = xmlText(/<Key>([\s\S]*?)<\/Key>/.exec(body)?.[1] ?? '');
        const size = Number(/<Size>(\d+)<\/Size>/.exec(body)?.[1] ?? 0);
        const lastModified = Date.parse(/<LastModified>([^<]*)<\/LastModified>/.exec(body)?.[1] ?? '');
        yield { key, size, lastModified: Number.isNaN(lastModified) ? 0 : lastModified };
      }
      token = /<IsTruncated>true<\/IsTruncated>/.test(xml) ? xmlText(/<NextContinuationToken>([\s\S]*?)<\/NextContinuationToken>/.exec(xml)?.[1] ?? '') : undefined;
    } while (token);
  }
}

function xmlText(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (_, e: string) =>
    e === 'lt' ? '<' : e === 'gt' ? '>' : e === 'amp' ? '&' : e === 'quot' ? '"' : e === 'apos' ? "'" : String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10)),
  );
}
