// The reverse proxy to a workspace app: HTTP requests and upgrades (WebSockets) carried over a
// tunnel stream to the app's port inside the workspace. Both directions stream with Node's
// backpressure; the caller's Coder credentials never reach the app, and the app cannot set
// coderd's cookies.
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { pipeline, type Duplex } from "node:stream";
import { connect as tlsConnect } from "node:tls";
import { SESSION_TOKEN_COOKIE, SESSION_TOKEN_HEADER } from "../../codersdk/index.js";

/** The cookie that authenticates a browser on a subdomain app's host. */
export const SUBDOMAIN_APP_COOKIE = "coder_subdomain_app_session_token";
/** Cookies that hold Coder credentials: never passed to an app, never set by one. */
const CREDENTIAL_COOKIES = new Set([SESSION_TOKEN_COOKIE.toLowerCase(), SUBDOMAIN_APP_COOKIE.toLowerCase()]);

/** Hop-by-hop headers (RFC 9110 §7.6.1) and those the proxy sets itself. */
const REQUEST_DROP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "expect",
  "host",
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-proto",
  "x-forwarded-prefix",
  SESSION_TOKEN_HEADER.toLowerCase(),
]);
const RESPONSE_DROP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "te", "trailer", "transfer-encoding", "upgrade"]);

export interface Forwarded {
  /** The client's address. */
  for: string;
  /** The scheme the client used (the access URL's). */
  proto: string;
  /** The Host the client asked for. */
  host: string;
  /** The path prefix stripped before proxying (path-based apps). */
  prefix?: string;
}

export interface UpstreamTarget {
  /** Path and query on the app. */
  path: string;
  /** The app URL's host (sent as Host, so dev servers that check it accept the request). */
  host: string;
  port: number;
  https: boolean;
}

function connectionTokens(value: string | string[] | undefined): Set<string> {
  const text = Array.isArray(value) ? value.join(",") : (value ?? "");
  return new Set(
    text
      .split(",")
      .map((t) => t.trim().toLowerCase())
      .filter(Boolean),
  );
}

/** The Cookie header without Coder's credential cookies (undefined when nothing is left). */
export function stripCredentialCookies(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const kept = header
    .split(";")
    .map((c) => c.trim())
    .filter((c) => c && !CREDENTIAL_COOKIES.has(cookieName(c)));
  return kept.length ? kept.join("; ") : undefined;
}

function cookieName(pair: string): string {
  const eq = pair.indexOf("=");
  return (eq >= 0 ? pair.slice(0, eq) : pair).trim().toLowerCase();
}

function setsCredentialCookie(value: string): boolean {
  return CREDENTIAL_COOKIES.has(cookieName(value.split(";")[0] ?? ""));
}

/** What the app receives: the client's headers minus hop-by-hop ones and Coder's credentials. */
export function upstreamHeaders(headers: IncomingHttpHeaders, t: UpstreamTarget, fwd: Forwarded, upgrade: boolean): OutgoingHttpHeaders {
  const named = connectionTokens(headers.connection);
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || REQUEST_DROP.has(k) || named.has(k)) continue;
    if (k === "cookie") {
      const kept = stripCredentialCookies(Array.isArray(v) ? v.join("; ") : v);
      if (kept) out.cookie = kept;
      continue;
    }
    out[k] = v;
  }
  const defaultPort = t.https ? 443 : 80;
  out.host = t.port === defaultPort ? t.host : `${t.host}:${t.port}`;
  const prior = headers["x-forwarded-for"];
  out["x-forwarded-for"] = prior ? `${Array.isArray(prior) ? prior.join(", ") : prior}, ${fwd.for}` : fwd.for;
  out["x-forwarded-proto"] = fwd.proto;
  out["x-forwarded-host"] = fwd.host;
  if (fwd.prefix) out["x-forwarded-prefix"] = fwd.prefix;
  if (upgrade) {
    out.connection = "Upgrade";
    out.upgrade = headers.upgrade;
  } else {
    out.connection = "close";
    // A chunked request body stays chunked (Node would not frame a body on e.g. GET by itself).
    if (headers["transfer-encoding"] && headers["content-length"] === undefined) out["transfer-encoding"] = "chunked";
  }
  return out;
}

/** The app's response headers as a flat raw list, minus hop-by-hop ones and credential cookies. */
export function downstreamHeaders(raw: string[], upgrade: boolean): string[] {
  const named = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === "connection") for (const t of connectionTokens(raw[i + 1])) named.add(t);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!;
    const v = raw[i + 1]!;
    const lk = k.toLowerCase();
    const keepForUpgrade = upgrade && (lk === "connection" || lk === "upgrade");
    if (!keepForUpgrade && (RESPONSE_DROP.has(lk) || named.has(lk))) continue;
    if (lk === "set-cookie" && setsCredentialCookie(v)) continue;
    out.push(k, v);
  }
  return out;
}

function connector(stream: Duplex, t: UpstreamTarget): () => Socket {
  // An https app is reached over TLS inside the tunnel; its certificate is usually self-signed
  // for localhost, and the tunnel already authenticates the workspace.
  return () => (t.https ? tlsConnect({ socket: stream as Socket, servername: /^[\d.]+$|:/.test(t.host) ? undefined : t.host, rejectUnauthorized: false }) : (stream as Socket));
}

export interface ErrorBody {
  status: number;
  message: string;
  detail?: string;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** An error page for browsers, the API's error JSON for everyone else. */
export function renderError(e: ErrorBody, html: boolean): { type: string; body: string } {
  if (!html) return { type: "application/json", body: JSON.stringify(e.detail ? { message: e.message, detail: e.detail } : { message: e.message }) };
  const detail = e.detail ? `<p>${escapeHtml(e.detail)}</p>` : "";
  return {
    type: "text/html; charset=utf-8",
    body: `<!doctype html><html><head><meta charset="utf-8"><title>${e.status} - ${escapeHtml(e.message)}</title></head><body><h1>${e.status}</h1><p><strong>${escapeHtml(e.message)}</strong></p>${detail}</body></html>\n`,
  };
}

function writeRawError(res: ServerResponse, e: ErrorBody, html: boolean): void {
  const { type, body } = renderError(e, html);
  res.writeHead(e.status, { "content-type": type, "content-length": Buffer.byteLength(body), "cache-control": "no-store" });
  res.end(body);
}

/** For a socket that asked to upgrade: a plain HTTP error response, then close. */
export function writeSocketError(socket: Duplex, e: ErrorBody, html: boolean): void {
  if (socket.destroyed || !socket.writable) return void socket.destroy();
  const { type, body } = renderError(e, html);
  const reason = e.status === 502 ? "Bad Gateway" : "Error";
  socket.end(`HTTP/1.1 ${e.status} ${reason}\r\ncontent-type: ${type}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

const unreachable = (t: UpstreamTarget, err: Error): ErrorBody => ({
  status: 502,
  message: `The app did not answer on port ${t.port} in the workspace.`,
  detail: `Is it running and listening on 127.0.0.1:${t.port}? (${err.message})`,
});

/**
 * Proxies one HTTP request over the stream; resolves with the status sent (or undefined when the
 * client went away first). Never rejects: errors become a 502 or a cut connection.
 */
export function proxyHttp(req: IncomingMessage, res: ServerResponse, stream: Duplex, t: UpstreamTarget, fwd: Forwarded, html: boolean): Promise<number | undefined> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (status: number | undefined) => {
      if (settled) return;
      settled = true;
      resolve(status);
    };
    const upstream = httpRequest({
      method: req.method,
      path: t.path,
      headers: upstreamHeaders(req.headers, t, fwd, false),
      createConnection: connector(stream, t),
    });
    upstream.on("response", (ures) => {
      res.writeHead(ures.statusCode ?? 502, ures.statusMessage, downstreamHeaders(ures.rawHeaders, false));
      pipeline(ures, res, (err) => {
        if (err) res.destroy();
        done(err && !res.writableFinished ? undefined : (ures.statusCode ?? 502));
      });
    });
    upstream.on("error", (err) => {
      stream.destroy();
      if (res.headersSent) {
        res.destroy();
        done(undefined);
      } else {
        writeRawError(res, unreachable(t, err), html);
        done(502);
      }
    });
    // The client left: the app's side of the exchange ends too.
    res.on("close", () => {
      if (!res.writableFinished) {
        upstream.destroy();
        stream.destroy();
        done(undefined);
      }
    });
    pipeline(req, upstream, () => {
      // Errors surface on upstream's "error" (or the client's close) above.
    });
  });
}

/**
 * Proxies a request that asked to upgrade (WebSocket): the app's answer goes back on the raw
 * socket; after a 101 the two sockets are joined byte for byte. `track` sees the joined socket.
 */
export function proxyUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, stream: Duplex, t: UpstreamTarget, fwd: Forwarded, html: boolean): Promise<number | undefined> {
  return new Promise((resolve) => {
    const upstream = httpRequest({
      method: req.method,
      path: t.path,
      headers: upstreamHeaders(req.headers, t, fwd, true),
      createConnection: connector(stream, t),
    });
    const teardown = () => {
      socket.destroy();
      stream.destroy();
    };
    socket.on("error", teardown);
    socket.on("close", () => {
      upstream.destroy();
      stream.destroy();
    });
    const statusHead = (status: number, message: string | undefined, raw: string[]) => {
      const lines = [`HTTP/1.1 ${status} ${message ?? ""}`.trimEnd()];
      for (let i = 0; i < raw.length; i += 2) lines.push(`${raw[i]}: ${raw[i + 1]}`);
      return `${lines.join("\r\n")}\r\n\r\n`;
    };
    upstream.on("upgrade", (ures, appSocket: Duplex, appHead: Buffer) => {
      socket.write(statusHead(ures.statusCode ?? 101, ures.statusMessage, downstreamHeaders(ures.rawHeaders, true)));
      if (appHead.length) socket.write(appHead);
      if (head.length) appSocket.write(head);
      appSocket.on("error", teardown);
      appSocket.on("close", () => socket.destroy());
      socket.on("close", () => appSocket.destroy());
      appSocket.pipe(socket);
      socket.pipe(appSocket);
      resolve(ures.statusCode ?? 101);
    });
    upstream.on("response", (ures) => {
      // The app declined the upgrade: its answer is passed on, and the connection ends with it.
      const raw = downstreamHeaders(ures.rawHeaders, false);
      raw.push("connection", "close");
      socket.write(statusHead(ures.statusCode ?? 502, ures.statusMessage, raw));
      ures.pipe(socket);
      resolve(ures.statusCode ?? 502);
    });
    upstream.on("error", (err) => {
      stream.destroy();
      writeSocketError(socket, unreachable(t, err), html);
      resolve(502);
    });
    upstream.end();
  });
}
