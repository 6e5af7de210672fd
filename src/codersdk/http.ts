// HTTP for the SDK client on node:http(s), not fetch: a CLI run makes a few requests, and fetch's
// first call spends ~60 ms loading undici (~110 ms under coder's V8 flags), which OpenSSH's
// `coder ssh --stdio` would pay on every connection. node:http loads in a few milliseconds.
import { Agent as PlainAgent, request as plainRequest, type IncomingMessage, type OutgoingHttpHeaders } from "node:http";
import { Agent as TlsAgent, request as tlsRequest } from "node:https";

export interface HttpInit {
  method: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
  signal?: AbortSignal;
  /** Headers that carry credentials: not sent on to another origin when redirected there. */
  credentialHeaders?: string[];
  /**
   * Fails the request once the server has sent nothing for this long, so a hung server cannot
   * hang the CLI. Default 2 minutes: every API call answers well within it, and the event
   * streams send a keep-alive every 15 s.
   */
  idleTimeoutMs?: number;
}

const MAX_REDIRECTS = 5;
const IDLE_TIMEOUT_MS = 120_000;
// Idle connections are closed after 4 s, before servers' usual 5 s (Node's default, ours included),
// so a request rarely goes out on a connection the server is closing; when one does anyway, it is
// sent again on a new connection (see once).
const agents = { plain: new PlainAgent({ keepAlive: true, timeout: 4_000 }), tls: new TlsAgent({ keepAlive: true, timeout: 4_000 }) };

/**
 * Sends a request and resolves with the response once its head arrived; the body is the
 * response's stream. Redirects are followed as fetch does (303, and 301/302 after a POST, turn into
 * a GET without a body), except that credentials stay with the origin they were meant for.
 */
export async function httpRequest(url: URL, init: HttpInit): Promise<IncomingMessage> {
  let target = url;
  let { method, body } = init;
  const headers: Record<string, string> = { ...init.headers };
  for (let hops = 0; ; hops++) {
    const res = await once(target, method, headers, body, init.signal, init.idleTimeoutMs ?? IDLE_TIMEOUT_MS);
    const location = res.headers.location;
    const status = res.statusCode ?? 0;
    if (![301, 302, 303, 307, 308].includes(status) || !location || hops >= MAX_REDIRECTS) return res;
    res.resume();
    const next = new URL(location, target);
    if (next.protocol !== "http:" && next.protocol !== "https:") return res;
    if (next.origin !== target.origin) for (const h of init.credentialHeaders ?? []) delete headers[h];
    if (status === 303 || ((status === 301 || status === 302) && method === "POST")) {
      if (method !== "HEAD") method = "GET";
      body = undefined;
      delete headers["Content-Type"];
    }
    target = next;
  }
}

function once(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: string | Uint8Array | undefined,
  signal: AbortSignal | undefined,
  idleTimeoutMs: number,
  retried = false,
): Promise<IncomingMessage> {
  const all: OutgoingHttpHeaders = { ...headers };
  if (body !== undefined) all["Content-Length"] = typeof body === "string" ? Buffer.byteLength(body) : body.byteLength;
  const tls = url.protocol === "https:";
  const send = tls ? tlsRequest : plainRequest;
  return new Promise((resolve, reject) => {
    let response: IncomingMessage | undefined;
    const req = send(url, { method, headers: all, signal, agent: tls ? agents.tls : agents.plain }, (res) => resolve((response = res)));
    // Covers the response body too: the socket's idle timer runs until the response has ended.
    req.setTimeout(idleTimeoutMs, () => {
      const err = Object.assign(new Error(`the server sent nothing for ${idleTimeoutMs / 1000}s`), { code: "ETIMEDOUT" });
      if (response) response.destroy(err);
      else req.destroy(err);
    });
    req.once("error", (err: NodeJS.ErrnoException) => {
      // A kept-alive connection the server closed as we reused it: the request never reached it.
      if (req.reusedSocket && !retried && (err.code === "ECONNRESET" || err.code === "EPIPE")) resolve(once(url, method, headers, body, signal, idleTimeoutMs, true));
      else reject(err);
    });
    req.end(body);
  });
}

/** The whole body as text (UTF-8). */
export async function readText(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
