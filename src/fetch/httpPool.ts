/**
 * HTTP GETs over keep-alive connections, with the agent npm itself uses
 * (@npmcli/agent from the user's npm): the same proxy (`https-proxy`,
 * `proxy`, `noproxy`), TLS (`strict-ssl`, `ca`/`cafile`, `cert`, `key`),
 * `maxsockets` and `fetch-timeout` handling as `npm ci`. When that module
 * cannot be loaded (no npm), Node's own keep-alive agents are used, and a
 * configured proxy is refused rather than silently bypassed.
 */
import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/** The npm config an agent needs: plain data, so it crosses to worker threads. */
export interface AgentConfig {
  /** the user's npm package directory, where @npmcli/agent is loaded from */
  npmRoot: string | undefined;
  ca: string | string[] | null;
  cert: string | null;
  key: string | null;
  localAddress: string | null;
  proxy: string | null;
  noProxy: string | null;
  strictSSL: boolean;
  /** npm's `fetch-timeout` (idle), ms */
  timeout: number;
  maxSockets: number;
}

/** AgentConfig from npm's flatOptions. */
export function agentConfigOf(flat: Record<string, unknown>, npmRoot: string | undefined, maxSockets: number): AgentConfig {
  const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
  const ca = flat.ca;
  return {
    npmRoot,
    ca: typeof ca === 'string' || Array.isArray(ca) ? (ca as string | string[]) : null,
    cert: str(flat.cert),
    key: str(flat.key),
    localAddress: str(flat.localAddress),
    proxy: str(flat.httpsProxy) ?? str(flat.proxy),
    noProxy: str(flat.noProxy),
    strictSSL: flat.strictSSL !== false,
    timeout: typeof flat.timeout === 'number' ? flat.timeout : 5 * 60 * 1000,
    maxSockets,
  };
}

type GetAgent = (url: string, options: Record<string, unknown>) => http.Agent;

export class HttpPool {
  readonly #config: AgentConfig;
  readonly #getAgent: GetAgent | undefined;
  readonly #fallback = new Map<string, http.Agent>();

  constructor(config: AgentConfig) {
    this.#config = config;
    this.#getAgent = loadNpmAgent(config.npmRoot);
  }

  #agentFor(url: URL, extra: { cert?: string | undefined; key?: string | undefined }): http.Agent {
    const c = this.#config;
    if (this.#getAgent) {
      return this.#getAgent(url.href, {
        ca: c.ca ?? undefined,
        cert: extra.cert ?? c.cert ?? undefined,
        key: extra.key ?? c.key ?? undefined,
        localAddress: c.localAddress ?? undefined,
        maxSockets: c.maxSockets,
        noProxy: c.noProxy ?? undefined,
        proxy: c.proxy ?? undefined,
        rejectUnauthorized: c.strictSSL,
        timeout: c.timeout,
      });
    }
    if (c.proxy) throw Object.assign(new Error(`a proxy is configured (${c.proxy}) but npm's @npmcli/agent could not be loaded to use it`), { code: 'EPROXYUNAVAILABLE' });
    const secure = url.protocol === 'https:';
    let agent = this.#fallback.get(url.protocol);
    if (!agent) {
      const opts = { keepAlive: true, maxSockets: c.maxSockets, timeout: c.timeout };
      agent = secure ? new https.Agent({ ...opts, ca: c.ca ?? undefined, cert: c.cert ?? undefined, key: c.key ?? undefined, rejectUnauthorized: c.strictSSL }) : new http.Agent(opts);
      this.#fallback.set(url.protocol, agent);
    }
    return agent;
  }

  /** GET `url`; resolves with the response once its headers arrived (the body is the caller's to read). */
  get(url: string, headers: Record<string, string>, tls: { cert?: string | undefined; key?: string | undefined } = {}): Promise<http.IncomingMessage> {
    const u = new URL(url);
    const agent = this.#agentFor(u, tls);
    const request = u.protocol === 'https:' ? https.request : http.request;
    return new Promise((resolve, reject) => {
      const req = request(u, { method: 'GET', headers, agent }, resolve);
      req.on('error', reject);
      req.setTimeout(this.#config.timeout, () => req.destroy(Object.assign(new Error(`no answer from ${u.host} in ${this.#config.timeout} ms`), { code: 'ETIMEDOUT' })));
      req.end();
    });
  }
}

function loadNpmAgent(npmRoot: string | undefined): GetAgent | undefined {
  if (!npmRoot) return undefined;
  try {
    const req = createRequire(join(npmRoot, 'package.json'));
    return (req('@npmcli/agent') as { getAgent: GetAgent }).getAgent;
  } catch {
    return undefined;
  }
}
