/**
 * Retries as npm's fetch does (make-fetch-happen with npm's `fetch-retries`,
 * `fetch-retry-factor`, `fetch-retry-mintimeout`, `fetch-retry-maxtimeout`):
 * a request that failed with a 408/420/429/5xx answer, a reset, a refused or
 * timed-out connection, or a body cut short is tried again after
 * min(maxTimeout, minTimeout * factor^n). Other failures are final.
 */

export interface RetryPolicy {
  retries: number;
  factor: number;
  minTimeout: number;
  maxTimeout: number;
}

/** npm's defaults: 2 retries, factor 10, 10 s then up to 60 s. */
export const NPM_RETRY_DEFAULTS: RetryPolicy = { retries: 2, factor: 10, minTimeout: 10_000, maxTimeout: 60_000 };

/** Never more than this many retries or this long a wait, whatever the config says. */
const MAX_RETRIES = 10;
const MAX_WAIT_MS = 120_000;

const num = (v: unknown, fallback: number): number => {
  const n = typeof v === 'string' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : fallback;
};

/** The policy from npm's flatOptions (`retry`, or the fetch-retry-* keys). */
export function retryPolicyOf(flat: Record<string, unknown>): RetryPolicy {
  const r = (flat.retry ?? {}) as Record<string, unknown>;
  const d = NPM_RETRY_DEFAULTS;
  return {
    retries: Math.min(MAX_RETRIES, Math.floor(num(r.retries ?? flat.fetchRetries, d.retries))),
    factor: num(r.factor ?? flat.fetchRetryFactor, d.factor),
    minTimeout: Math.min(MAX_WAIT_MS, num(r.minTimeout ?? flat.fetchRetryMintimeout, d.minTimeout)),
    maxTimeout: Math.min(MAX_WAIT_MS, num(r.maxTimeout ?? flat.fetchRetryMaxtimeout, d.maxTimeout)),
  };
}

/** Wait before retry number `attempt` (1 = the first retry). */
export function retryDelay(policy: RetryPolicy, attempt: number): number {
  return Math.min(policy.maxTimeout, policy.minTimeout * policy.factor ** (attempt - 1));
}

export function isRetriableStatus(status: number): boolean {
  return status === 408 || status === 420 || status === 429 || status >= 500;
}

const RETRIABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EADDRINUSE',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ERR_SOCKET_TIMEOUT',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
  'ECONNECTIONTIMEOUT',
  'EIDLETIMEOUT',
  'ERESPONSETIMEOUT',
  'ETRANSFERTIMEOUT',
  'ETRUNCATED',
]);

/** A network-level failure worth another try (not a 4xx, not bad bytes). */
export function isRetriableError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && RETRIABLE_CODES.has(code);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
