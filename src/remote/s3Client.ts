/**
 * A small S3 client on Node's fetch and sigv4.ts: GET (whole or a byte
 * range), PUT (on node:http, httpSend.ts), DELETE and ListObjectsV2 — all
 * velo's remote tier needs.
 * Every request has an idle timeout and transient failures are retried;
 * failures are RemoteError (a VeloError with code NETWORK and the HTTP
 * status, 0 when the server was not reached).
 */
import { VeloError } from '../errors.js';
import { signRequest, uriEncode, type Credentials } from './sigv4.js';
import { Agents, sendParts, type SendFailure } from './httpSend.js';

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
  /** worth retrying: a reset connection or a timeout, not a refused one */
  readonly transient: boolean;
  constructor(message: string, status: number, cause?: unknown, transient = false) {
    super('NETWORK', message, cause === undefined ? {} : { cause });
    this.status = status;
    this.transient = transient;
  }
}

interface RequestOptions {
  query?: Record<string, string>;
  headers?: Record<string, string>;
  /** the request's body, in parts (sent as they are, one after the other) */
  body?: readonly Buffer[];
  /** refuse an answer body longer than this */
  maxBytes?: number;
}

interface Answer {
  status: number;
  body: Buffer;
}

const RETRIES = 2;
const RETRY_DELAY_MS = 200;
const RETRY_STATUS = new Set([429, 500, 502, 503, 504]);
/** connection failures that say the server is not there: retrying will not help */
const NOT_TRANSIENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_INVALID_URL', 'ERR_TLS_CERT_ALTNAME_INVALID', 'DEPTH_ZERO_SELF_SIGNED_CERT']);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface ListedObject {
  key: string;
  size: number;
  lastModified: number;
}

export class S3Client {
  readonly loc: S3Location;
  /** requests sent and bytes moved, for status and benchmarks */
  readonly stats = { requests: 0, bytesIn: 0, bytesOut: 0 };
  readonly #agents = new Agents();

  constructor(loc: S3Location) {
    this.loc = loc;
  }

  /** scheme://host[:port] and the path up to the key, worked out once (a publish builds thousands of URLs) */
  #base: string | undefined;

  url(key: string, query?: Record<string, string>): URL {
    if (this.#base === undefined) {
      const ep = new URL(this.loc.endpoint);
      this.#base = this.loc.pathStyle ? `${ep.protocol}//${ep.host}/${uriEncode(this.loc.bucket)}/` : `${ep.protocol}//${this.loc.bucket}.${ep.host}/`;
    }
    const url = new URL(`${this.#base}${uriEncode(key, true)}`);
    // URLSearchParams encodes ' ' as '+', which S3 reads as '+': build the query by hand
    if (query) url.search = Object.entries(query).map(([k, v]) => `${uriEncode(k)}=${uriEncode(v)}`).join('&');
    return url;
  }

  /**
   * One request, its whole answer read. The timeout is for silence — no
   * answer, or no body bytes, for timeoutMs (an upload gets extra time for
   * its bytes at 256 KiB/s) — not for the whole transfer, so a large object
   * on a slow link is not cut off while it flows. Transient failures (reset
   * connections, timeouts, 5xx, 429) are retried twice; a refused
   * connection or a 4xx is not.
   */
  async #request(method: string, key: string, opts: RequestOptions = {}): Promise<Answer> {
    for (let attempt = 0; ; attempt++) {
      try {
        const answer = await this.#once(method, key, opts);
        if (attempt < RETRIES && RETRY_STATUS.has(answer.status)) {
          await sleep(RETRY_DELAY_MS * 4 ** attempt);
          continue;
        }
        return answer;
      } catch (err) {
        if (!(err instanceof RemoteError) || attempt >= RETRIES || !err.transient) throw err;
        await sleep(RETRY_DELAY_MS * 4 ** attempt);
      }
    }
  }

  async #once(method: string, key: string, opts: RequestOptions): Promise<Answer> {
    const url = this.url(key, opts.query);
    const base = { ...(opts.headers ?? {}) };
    const bodySize = opts.body?.reduce((n, p) => n + p.length, 0) ?? 0;
    if (opts.body) base['content-length'] = String(bodySize);
    const headers = this.loc.credentials ? signRequest({ method, url, headers: base, region: this.loc.region, credentials: this.loc.credentials }) : base;
    this.stats.requests++;
    if (opts.body) return this.#send(method, key, url, headers, opts.body, bodySize);
    const ac = new AbortController();
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = (ms: number): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = true;
        ac.abort();
      }, ms);
    };
    arm(this.loc.timeoutMs);
    try {
      const res = await fetch(url, { method, headers, signal: ac.signal });
      const chunks: Buffer[] = [];
      let size = 0;
      if (res.body) {
        const reader = res.body.getReader();
        for (;;) {
          arm(this.loc.timeoutMs);
          const { done, value } = await reader.read();
          if (done) break;
          chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
          size += value.byteLength;
          if (opts.maxBytes !== undefined && size > opts.maxBytes) {
            await reader.cancel();
            throw new RemoteError(`${method} ${this.describe(key)}: the answer is larger than the ${opts.maxBytes} bytes it can be`, res.status);
          }
        }
      }
      this.stats.bytesIn += size;
      return { status: res.status, body: Buffer.concat(chunks, size) };
    } catch (err) {
      if (err instanceof RemoteError) throw err;
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const code = e.cause?.code;
      throw this.#unreached(method, key, err, timedOut, code ?? e.cause?.message ?? e.message);
    } finally {
      clearTimeout(timer);
    }
  }

  /** A request with a body (sendParts: no copy of it); an upload gets extra time for its bytes at 256 KiB/s. */
  async #send(method: string, key: string, url: URL, headers: Record<string, string>, body: readonly Buffer[], size: number): Promise<Answer> {
    try {
      const answer = await sendParts(this.#agents, method, url, headers, body, this.loc.timeoutMs, Math.round(size / 256));
      this.stats.bytesOut += size;
      this.stats.bytesIn += answer.body.length;
      return answer;
    } catch (err) {
      const e = err as SendFailure;
      throw this.#unreached(method, key, err, e.timedOut, e.code ?? e.message);
    }
  }

  #unreached(method: string, key: string, err: unknown, timedOut: boolean, why: string): RemoteError {
    const text = timedOut ? `no answer within ${this.loc.timeoutMs} ms` : why;
    return new RemoteError(`${method} ${this.describe(key)}: ${text}`, 0, err, timedOut || !NOT_TRANSIENT.has(why));
  }

  describe(key: string): string {
    return `s3://${this.loc.bucket}/${key}`;
  }

  #fail(method: string, key: string, res: Answer): never {
    const code = /<Code>([^<]*)<\/Code>/.exec(res.body.toString('utf8'))?.[1];
    const what = res.status === 403 ? 'access denied' : res.status === 404 ? 'not found' : `HTTP ${res.status}`;
    throw new RemoteError(`${method} ${this.describe(key)}: ${what}${code ? ` (${code})` : ''}`, res.status);
  }

  /**
   * The object's bytes (or the byte range [start, end], inclusive), undefined
   * when it does not exist. An answer longer than maxBytes (or than the range)
   * is refused: the remote is untrusted, and memory is not.
   */
  async get(key: string, range?: { start: number; end: number }, maxBytes?: number): Promise<Buffer | undefined> {
    const limit = maxBytes ?? (range ? range.end - range.start + 1 : undefined);
    const res = await this.#request('GET', key, {
      ...(range ? { headers: { range: `bytes=${range.start}-${range.end}` } } : {}),
      ...(limit !== undefined ? { maxBytes: limit } : {}),
    });
    if (res.status === 404) return undefined;
    if (res.status !== 200 && res.status !== 206) return this.#fail('GET', key, res);
    return res.body;
  }

  /** Whether the object exists (HEAD). */
  async exists(key: string): Promise<boolean> {
    const res = await this.#request('HEAD', key);
    if (res.status === 404) return false;
    if (res.status !== 200) this.#fail('HEAD', key, res);
    return true;
  }

  /** PUT an object whose bytes are `body`, or its parts one after the other (a pack, not concatenated first). */
  async put(key: string, body: Buffer | readonly Buffer[], contentType = 'application/octet-stream'): Promise<void> {
    const res = await this.#request('PUT', key, { body: Buffer.isBuffer(body) ? [body] : body, headers: { 'content-type': contentType } });
    if (res.status !== 200) this.#fail('PUT', key, res);
  }

  async delete(key: string): Promise<void> {
    const res = await this.#request('DELETE', key);
    if (res.status !== 204 && res.status !== 200 && res.status !== 404) this.#fail('DELETE', key, res);
  }

  /** Every object under prefix (ListObjectsV2, 1000 a page). */
  async *list(prefix: string): AsyncGenerator<ListedObject> {
    let token: string | undefined;
    do {
      const page = await this.listPage(prefix, token);
      yield* page.objects;
      token = page.next;
    } while (token);
  }

  /** One page of the objects under prefix (ListObjectsV2: up to 1000), whether there are more, and the token of the next page. */
  async listPage(prefix: string, token?: string): Promise<{ objects: ListedObject[]; next: string | undefined; truncated: boolean }> {
    const query: Record<string, string> = { 'list-type': '2', prefix };
    if (token) query['continuation-token'] = token;
    const res = await this.#request('GET', '', { query });
    if (res.status !== 200) this.#fail('LIST', prefix, res);
    const xml = res.body.toString('utf8');
    const objects: ListedObject[] = [];
    for (const m of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
      const body = m[1]!;
      const key = xmlText(/<Key>([\s\S]*?)<\/Key>/.exec(body)?.[1] ?? '');
      const size = Number(/<Size>(\d+)<\/Size>/.exec(body)?.[1] ?? 0);
      const lastModified = Date.parse(/<LastModified>([^<]*)<\/LastModified>/.exec(body)?.[1] ?? '');
      objects.push({ key, size, lastModified: Number.isNaN(lastModified) ? 0 : lastModified });
    }
    const truncated = /<IsTruncated>true<\/IsTruncated>/.test(xml);
    // a truncated page without a token cannot be continued: the listing ends there
    const next = truncated ? xmlText(/<NextContinuationToken>([\s\S]*?)<\/NextContinuationToken>/.exec(xml)?.[1] ?? '') || undefined : undefined;
    return { objects, next, truncated };
  }
}

function xmlText(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (_, e: string) =>
    e === 'lt' ? '<' : e === 'gt' ? '>' : e === 'amp' ? '&' : e === 'quot' ? '"' : e === 'apos' ? "'" : String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10)),
  );
}
