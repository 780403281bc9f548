/**
 * A request with a body, on node:http(s) rather than fetch: the body goes to
 * the socket as the given parts, with no copy. (fetch copies a Uint8Array
 * body twice before it sends it, and a pack would have to be concatenated
 * first: for a publish of 169 MB that was ~0.5 s of the main thread's CPU
 * and as much garbage.) Connections are kept alive per client; an idle one
 * never keeps the process alive.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

export interface SendAnswer {
  status: number;
  body: Buffer;
}

export interface SendFailure extends Error {
  /** no answer (nor answer bytes) within the silence timeout */
  timedOut: boolean;
  code?: string;
}

/** keep-alive agents, one per scheme, for one client */
export class Agents {
  #http: HttpAgent | undefined;
  #https: HttpsAgent | undefined;

  for(url: URL): HttpAgent {
    if (url.protocol === 'https:') return (this.#https ??= new HttpsAgent({ keepAlive: true }));
    return (this.#http ??= new HttpAgent({ keepAlive: true }));
  }
}

/**
 * Send `parts` as the body of one request and read the whole answer. The
 * request fails (a SendFailure) after `silenceMs` without progress: before
 * the body is sent, `silenceMs` plus `extraMs` for its bytes.
 */
export function sendParts(agents: Agents, method: string, url: URL, headers: Record<string, string>, parts: readonly Buffer[], silenceMs: number, extraMs: number): Promise<SendAnswer> {
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, { method, headers, agent: agents.for(url) });
    const arm = (ms: number): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = true;
        req.destroy(new Error(`no answer within ${silenceMs} ms`));
      }, ms);
    };
    const fail = (err: Error): void => {
      clearTimeout(timer);
      reject(Object.assign(err, { timedOut }) as SendFailure);
    };
    req.on('error', fail);
    req.on('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      arm(silenceMs);
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        arm(silenceMs);
      });
      res.on('error', fail);
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) });
      });
    });
    arm(silenceMs + extraMs);
    for (const p of parts) req.write(p);
    req.end();
  });
}
