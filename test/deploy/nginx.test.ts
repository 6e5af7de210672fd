// deploy/nginx/coder.conf (and coder-tls.conf) in real nginx, in front of small Node HTTP +
// WebSocket servers standing in for `coder server` replicas on 127.0.0.1. What an HA deployment
// needs from its load balancer: no stickiness, WebSockets, streaming both ways, big uploads,
// skipping a dead replica, the client's address forwarded.
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { WebSocket, WebSocketServer, type ClientOptions, type RawData } from "ws";
import { parseBytes, serverOptions } from "../../src/codersdk/index.js";
import { checkConfig, NGINX_BIN, renderSite, SHIPPED_CONF, SHIPPED_TLS_CONF, startNginx } from "../helpers/nginx.js";

const shipped = readFileSync(SHIPPED_CONF, "utf8");
const shippedTls = readFileSync(SHIPPED_TLS_CONF, "utf8");

// ---------------------------------------------------------------- upstream "replicas"

interface Hooks {
  /** GET /stream sends its first chunk, waits for this, then ends. */
  streamGate: Promise<void>;
  /** Called when a POST /upload body's first bytes arrive (the request is not over yet). */
  onBodyStart(): void;
}

interface Upstream {
  id: string;
  /** "127.0.0.1:port" */
  addr: string;
  requests: number;
  /** TCP connections accepted (nginx's keepalive reuses them). */
  connections: number;
  /** Server side of the WebSockets it accepted. */
  sockets: WebSocket[];
  /** Close codes of its WebSockets, as they close. */
  closeCodes: number[];
  onWsClose: Array<(code: number) => void>;
  close(): Promise<void>;
}

interface WhoAmI {
  id: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

async function startUpstream(id: string, hooks: Hooks): Promise<Upstream> {
  const up: Upstream = { id, addr: "", requests: 0, connections: 0, sockets: [], closeCodes: [], onWsClose: [], close: async () => {} };
  const server = http.createServer(async (req, res) => {
    up.requests++;
    if (req.url === "/stream") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("first\n");
      await hooks.streamGate;
      res.end("last\n");
      return;
    }
    if (req.url === "/upload" && req.method === "POST") {
      const hash = createHash("sha256");
      let bytes = 0;
      req.on("data", (d: Buffer) => {
        if (bytes === 0) hooks.onBodyStart();
        bytes += d.length;
        hash.update(d);
      });
      req.on("end", () => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ id, bytes, sha256: hash.digest("hex") }));
      });
      return;
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ id, url: req.url ?? "", headers: req.headers } satisfies WhoAmI));
  });
  // Like Fastify (72 s): longer than the shipped upstream keepalive_timeout (60 s).
  server.keepAliveTimeout = 72_000;
  server.on("connection", () => up.connections++);
  const wss = new WebSocketServer({ server, path: "/ws" });
  wss.on("connection", (ws) => {
    up.sockets.push(ws);
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on("close", (code) => {
      up.closeCodes.push(code);
      for (const f of up.onWsClose.splice(0)) f(code);
    });
    ws.send(`hello from ${id}`);
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  up.addr = `127.0.0.1:${(server.address() as { port: number }).port}`;
  let closing: Promise<void> | undefined;
  up.close = () =>
    (closing ??= new Promise<void>((res) => {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      server.close(() => res());
      server.closeAllConnections();
    }));
  onTestFinished(() => up.close());
  return up;
}

function hooks(): Hooks {
  return { streamGate: Promise.resolve(), onBodyStart: () => {} };
}

async function startUpstreams(n: number, h: Hooks = hooks()): Promise<Upstream[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => startUpstream(`replica-${i + 1}`, h)));
}

// ---------------------------------------------------------------- client side

interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function request(url: string, opts: http.RequestOptions & https.RequestOptions = {}, body?: Buffer): Promise<Res> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith("https:") ? https : http;
    const req = mod.request(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function whoami(url: string, opts: http.RequestOptions & https.RequestOptions = {}): Promise<WhoAmI> {
  const res = await request(`${url}/whoami`, opts);
  expect(res.status, res.body.toString()).toBe(200);
  return JSON.parse(res.body.toString()) as WhoAmI;
}

/** Messages of a WebSocket, in order, none lost between awaits. */
function inbox(ws: WebSocket): () => Promise<{ data: Buffer; isBinary: boolean }> {
  const queue: Array<{ data: Buffer; isBinary: boolean }> = [];
  const waiting: Array<(m: { data: Buffer; isBinary: boolean }) => void> = [];
  ws.on("message", (data: RawData, isBinary) => {
    const m = { data: Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer), isBinary };
    const w = waiting.shift();
    if (w) w(m);
    else queue.push(m);
  });
  return () => (queue.length ? Promise.resolve(queue.shift()!) : new Promise((r) => waiting.push(r)));
}

function openWs(url: string, opts: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<{ ws: WebSocket; next: ReturnType<typeof inbox> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts);
    const next = inbox(ws);
    ws.once("open", () => resolve({ ws, next }));
    ws.once("error", reject);
    ws.once("unexpected-response", (_req, res) => reject(new Error(`WebSocket upgrade answered ${res.statusCode}`)));
    onTestFinished(() => ws.terminate());
  });
}

/** Directive value in the shipped site file (first occurrence). */
function directive(site: string, name: string): string {
  const m = new RegExp(`^\\s*${name}\\s+([^;]+);`, "m").exec(site);
  if (!m) throw new Error(`${name} is not set`);
  return m[1]!.trim();
}

const seconds = (v: string) => {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(v);
  if (!m) throw new Error(`not an nginx time: ${v}`);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[m[2] ?? "s"]!;
};
const nginxBytes = (v: string) => {
  const m = /^(\d+)([kKmMgG]?)$/.exec(v);
  if (!m) throw new Error(`not an nginx size: ${v}`);
  return Number(m[1]) * ({ "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase()] ?? 1);
};

// A self-signed test certificate for coder.example.com and *.apps.example.com, valid 2000-2100
// (a fixture, so the suite needs no openssl CLI and no clock luck; made with `openssl ca
// -selfsign -startdate 20000101000000Z -enddate 21000101000000Z`). Test use only.
const TEST_CERT = `-----BEGIN CERTIFICATE-----
MIIBjTCCATOgAwIBAgIBATAKBggqhkjOPQQDAjAcMRowGAYDVQQDDBFjb2Rlci5l
eGFtcGxlLmNvbTAgFw0wMDAxMDEwMDAwMDBaGA8yMTAwMDEwMTAwMDAwMFowHDEa
MBgGA1UEAwwRY29kZXIuZXhhbXBsZS5jb20wWTATBgcqhkjOPQIBBggqhkjOPQMB
BwNCAASxusdDJdNpi6UGEn5KT/Q9tBrk+IUCNf0Dh75tdF0lot/c52k6glUzAbF/
JOxEzICn4yBxx17O9xepyrJsO3C6o2QwYjAPBgNVHRMBAf8EBTADAQH/MDAGA1Ud
EQQpMCeCEWNvZGVyLmV4YW1wbGUuY29tghIqLmFwcHMuZXhhbXBsZS5jb20wHQYD
VR0OBBYEFLhqvXRghNpbzqhguvUhJ3QJO3ieMAoGCCqGSM49BAMCA0gAMEUCIHxa
OOu0K2bovXPEyiYjgQRzfqnFUQqRDPdigllgflSBAiEA2Z71XEDCfel1saJCie2W
7NIvpmQZvV/oZArgY+Sh10Q=
-----END CERTIFICATE-----
`;
const TEST_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgxuMC1tzFA+LRD36a
Tyfnifb88HQGXEX4TblG83fcf8ShRANCAASxusdDJdNpi6UGEn5KT/Q9tBrk+IUC
Nf0Dh75tdF0lot/c52k6glUzAbF/JOxEzICn4yBxx17O9xepyrJsO3C6
-----END PRIVATE KEY-----
`;

/** The fixture written to files, as nginx wants them. */
function certFiles(): { cert: string; key: string } {
  const dir = mkdtempSync(join(process.env.CODER_TEST_RUN_DIR ?? tmpdir(), "coder-nginx-tls-"));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const cert = join(dir, "fullchain.pem");
  const key = join(dir, "privkey.pem");
  writeFileSync(cert, TEST_CERT);
  writeFileSync(key, TEST_KEY, { mode: 0o600 });
  return { cert, key };
}

// ---------------------------------------------------------------- tests

beforeAll(() => {
  if (!existsSync(NGINX_BIN)) throw new Error(`${NGINX_BIN} is missing: apt-get install -y nginx (.ci/run does)`);
});

describe("deploy/nginx/coder.conf", () => {
  it("passes `nginx -t` as shipped (and -t really checks: a broken copy fails)", async () => {
    const ok = await checkConfig(shipped);
    expect(ok.ok, ok.output).toBe(true);
    expect(ok.output).toContain("test is successful");
    const broken = await checkConfig(shipped.replace(/(upstream coder \{)/, "$1\n    no_such_directive on;"));
    expect(broken.ok).toBe(false);
    expect(broken.output).toContain("[emerg]");
  });

  it("sets what cannot be watched in a quick test: long tunnel timeouts, room for uploads, no stickiness", () => {
    // An idle `coder ssh` or terminal must outlive nginx's 60 s default.
    expect(seconds(directive(shipped, "proxy_read_timeout"))).toBeGreaterThanOrEqual(3600);
    expect(seconds(directive(shipped, "proxy_send_timeout"))).toBeGreaterThanOrEqual(3600);
    // A template as large as the server accepts by default reaches the server.
    const maxFile = parseBytes(serverOptions.find((o) => o.key === "maxFileBytes")!.default)!;
    expect(nginxBytes(directive(shipped, "client_max_body_size"))).toBeGreaterThanOrEqual(maxFile);
    // A dead replica is given up on quickly.
    expect(seconds(directive(shipped, "proxy_connect_timeout"))).toBeLessThanOrEqual(5);
    expect(directive(shipped, "proxy_next_upstream")).toMatch(/\berror\b.*\btimeout\b/);
    const upstream = /^upstream\s+coder\s*\{[^}]*\}/m.exec(shipped)![0].replace(/#.*$/gm, "");
    expect(upstream).not.toMatch(/\b(ip_hash|hash|sticky|least_conn)\b/);
    expect(upstream.match(/^\s*server\s/gm)).toHaveLength(3); // the seed's three replicas
  });

  it("renders only the upstream servers and the listen lines differently", () => {
    const out = renderSite(shipped, { upstreams: ["127.0.0.1:1111", "127.0.0.1:2222"], ports: new Map([[80, 4444]]) });
    expect(out).toContain("    server 127.0.0.1:1111 max_fails=1 fail_timeout=2s;\n    server 127.0.0.1:2222 max_fails=1 fail_timeout=2s;\n");
    expect(out).not.toMatch(/^\s*server 10\.0\.0\./m);
    expect(out).toContain("listen 127.0.0.1:4444;");
    const rest = (s: string) => s.split("\n").filter((l) => !/^\s*(server\s+\d|listen\s|# \(test helper)/.test(l));
    expect(rest(out)).toEqual(rest(shipped));
  });

  it("spreads requests over every replica, even on one client connection, reusing upstream connections", async () => {
    const ups = await startUpstreams(3);
    const ngx = await startNginx(ups.map((u) => u.addr));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    onTestFinished(() => agent.destroy());
    const ids: string[] = [];
    for (let i = 0; i < 15; i++) ids.push((await whoami(ngx.url, { agent })).id); // one client connection
    for (let i = 0; i < 15; i++) ids.push((await whoami(ngx.url, { agent: false })).id); // a new one each
    for (const u of ups) {
      expect(ids.filter((id) => id === u.id).length, `${u.id} in ${ids.join(",")}`).toBeGreaterThanOrEqual(5);
      expect(u.requests).toBe(ids.filter((id) => id === u.id).length);
    }
    // keepalive: at most one idle connection per worker and replica for sequential requests.
    const connections = ups.reduce((n, u) => n + u.connections, 0);
    expect(connections).toBeLessThanOrEqual(ngx.workerPids().length * ups.length);
  });

  it("forwards the client's address, the scheme and the Host as sent (access URL and wildcard apps)", async () => {
    const ups = await startUpstreams(1);
    const ngx = await startNginx(ups.map((u) => u.addr));
    const plain = await whoami(ngx.url);
    expect(plain.headers["x-forwarded-for"]).toBe("127.0.0.1");
    expect(plain.headers["x-real-ip"]).toBe("127.0.0.1");
    expect(plain.headers["x-forwarded-proto"]).toBe("http");
    expect(plain.headers.host).toBe(`127.0.0.1:${ngx.port}`);
    // Plain requests keep the upstream connection (no "Connection: close"), and carry no Upgrade.
    expect(plain.headers.connection).toBeUndefined();
    expect(plain.headers.upgrade).toBeUndefined();

    const chained = await whoami(ngx.url, { headers: { "x-forwarded-for": "203.0.113.7" } });
    expect(chained.headers["x-forwarded-for"]).toBe("203.0.113.7, 127.0.0.1");

    for (const host of ["coder.example.com", "8080--main--ws--alice.apps.example.com"]) {
      const r = await whoami(ngx.url, { headers: { host } });
      expect(r.headers.host).toBe(host);
      expect(r.headers["x-forwarded-host"]).toBe(host);
    }
  });

  it("carries a WebSocket both ways and keeps it open while other traffic passes", async () => {
    const ups = await startUpstreams(3);
    const ngx = await startNginx(ups.map((u) => u.addr));
    const { ws, next } = await openWs(`${ngx.url.replace(/^http/, "ws")}/ws`);

    const hello = await next(); // server → client, unprompted
    expect(hello.isBinary).toBe(false);
    const id = /^hello from (\S+)$/.exec(hello.data.toString())![1]!;
    const up = ups.find((u) => u.id === id)!;
    expect(up.sockets).toHaveLength(1);

    ws.send("text frame");
    expect((await next()).data.toString()).toBe("text frame");
    const big = randomBytes(1024 * 1024);
    ws.send(big);
    const echoed = await next();
    expect(echoed.isBinary).toBe(true);
    expect(echoed.data.equals(big)).toBe(true);

    // Other requests through nginx meanwhile do not disturb it.
    for (let i = 0; i < 6; i++) await whoami(ngx.url);
    for (let i = 0; i < 20; i++) ws.send(`n${i}`);
    for (let i = 0; i < 20; i++) expect((await next()).data.toString()).toBe(`n${i}`);
    expect(ws.readyState).toBe(WebSocket.OPEN);

    // The close handshake passes through too.
    const upstreamClosed = new Promise<number>((r) => up.onWsClose.push(r));
    const clientClosed = new Promise<number>((r) => ws.once("close", (code) => r(code)));
    ws.close(4001, "bye");
    expect(await upstreamClosed).toBe(4001);
    expect(await clientClosed).toBe(4001);
  });

  it("streams a response: the first chunk arrives before the replica ends it", { timeout: 15_000 }, async () => {
    let release!: () => void;
    const h = hooks();
    h.streamGate = new Promise<void>((r) => (release = r));
    const ups = await startUpstreams(1, h);
    const ngx = await startNginx(ups.map((u) => u.addr));
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => http.get(`${ngx.url}/stream`, resolve).on("error", reject));
    expect(res.statusCode).toBe(200);
    const chunks: string[] = [];
    let first!: () => void;
    const gotFirst = new Promise<void>((r) => (first = r));
    const ended = new Promise<void>((r) => res.on("end", r));
    res.on("data", (d: Buffer) => {
      chunks.push(d.toString());
      first();
    });
    // Buffered by nginx, this would wait forever: the replica holds the rest until released.
    await gotFirst;
    expect(chunks.join("")).toBe("first\n");
    release();
    await ended;
    expect(chunks.join("")).toBe("first\nlast\n");
  });

  it("streams a request body: the replica gets the first bytes before the client has finished", { timeout: 15_000 }, async () => {
    let started!: () => void;
    const bodyStarted = new Promise<void>((r) => (started = r));
    const h = hooks();
    h.onBodyStart = () => started();
    const ups = await startUpstreams(1, h);
    const ngx = await startNginx(ups.map((u) => u.addr));
    const part1 = randomBytes(64 * 1024);
    const part2 = randomBytes(64 * 1024);
    const response = new Promise<Res>((resolve, reject) => {
      const req = http.request(`${ngx.url}/upload`, { method: "POST", headers: { "content-type": "application/octet-stream" } }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (d: Buffer) => chunks.push(d));
        res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      });
      req.on("error", reject);
      req.write(part1); // chunked, no Content-Length
      // With request buffering, nginx would hold everything until the body ends: deadlock.
      void bodyStarted.then(() => req.end(part2));
    });
    const res = await response;
    expect(res.status).toBe(200);
    const got = JSON.parse(res.body.toString()) as { bytes: number; sha256: string };
    expect(got.bytes).toBe(part1.length + part2.length);
    expect(got.sha256).toBe(createHash("sha256").update(part1).update(part2).digest("hex"));
  });

  it("passes a template-sized upload (over nginx's 1 MiB default) and refuses one over its own limit", async () => {
    const ups = await startUpstreams(1);
    const ngx = await startNginx(ups.map((u) => u.addr));
    const size = parseBytes(serverOptions.find((o) => o.key === "maxFileBytes")!.default)!; // 10 MiB
    expect(size).toBeGreaterThan(1024 * 1024);
    const body = randomBytes(size);
    const res = await request(`${ngx.url}/upload`, { method: "POST", headers: { "content-type": "application/x-tar", "content-length": body.length } }, body);
    expect(res.status).toBe(200);
    const got = JSON.parse(res.body.toString()) as { bytes: number; sha256: string };
    expect(got.bytes).toBe(size);
    expect(got.sha256).toBe(createHash("sha256").update(body).digest("hex"));

    // Over client_max_body_size: nginx answers 413 from the Content-Length alone.
    const before = ups[0]!.requests;
    const limit = nginxBytes(directive(shipped, "client_max_body_size"));
    const head = await new Promise<string>((resolve, reject) => {
      const sock = connect(ngx.port, "127.0.0.1", () =>
        sock.write(`POST /upload HTTP/1.1\r\nHost: coder.example.com\r\nContent-Length: ${limit + 1}\r\n\r\n`),
      );
      let got = "";
      sock.on("data", (d) => {
        got += d.toString();
        if (got.includes("\r\n\r\n")) {
          sock.destroy();
          resolve(got);
        }
      });
      sock.on("error", reject);
    });
    expect(head).toMatch(/^HTTP\/1\.1 413 /);
    expect(ups[0]!.requests).toBe(before);
  });

  it("keeps answering every request when a replica stops (the next replica takes it)", async () => {
    const ups = await startUpstreams(3);
    const ngx = await startNginx(ups.map((u) => u.addr));
    const warm = new Set<string>();
    for (let i = 0; i < 6; i++) warm.add((await whoami(ngx.url)).id);
    expect(warm.size).toBe(3); // every replica has been used (and has keepalive connections)

    const [a, dead, c] = ups as [Upstream, Upstream, Upstream];
    await dead.close();
    const ids = new Set<string>();
    for (let i = 0; i < 30; i++) ids.add((await whoami(ngx.url)).id); // each asserts 200
    expect(ids).toEqual(new Set([a.id, c.id]));
    // nginx did try the stopped replica and moved on (not just never picked it).
    expect(ngx.errorLog()).toContain(dead.addr);

    // New WebSockets land on the live replicas too.
    for (let i = 0; i < 4; i++) {
      const { ws, next } = await openWs(`${ngx.url.replace(/^http/, "ws")}/ws`);
      expect((await next()).data.toString()).toMatch(new RegExp(`^hello from (${a.id}|${c.id})$`));
      ws.close();
    }
  });

  it("reloads with new upstreams (the helper's reload), then uses only those", async () => {
    const [a, b, c] = (await startUpstreams(3)) as [Upstream, Upstream, Upstream];
    const ngx = await startNginx([a.addr, b.addr]);
    const before = new Set<string>();
    for (let i = 0; i < 6; i++) before.add((await whoami(ngx.url)).id);
    expect(before).toEqual(new Set([a.id, b.id]));
    await ngx.reload([c.addr]);
    // Fresh connections: the old workers close the idle keep-alive connections of clients
    // as they shut down (a client reusing one at that moment sees "socket hang up").
    const after = new Set<string>();
    for (let i = 0; i < 10; i++) after.add((await whoami(ngx.url, { agent: false })).id);
    expect(after).toEqual(new Set([c.id]));
    await expect(ngx.reload(["not-an-address:"])).rejects.toThrow(/reload failed/);
    expect((await whoami(ngx.url, { agent: false })).id).toBe(c.id); // a bad reload keeps the running config
  });

  it("stop() ends the master and all workers", async () => {
    const ups = await startUpstreams(1);
    const ngx = await startNginx(ups.map((u) => u.addr), { workers: 3 });
    const workers = ngx.workerPids();
    expect(workers).toHaveLength(3);
    await ngx.stop();
    for (const pid of [ngx.pid, ...workers]) expect(existsSync(`/proc/${pid}/cmdline`) && readFileSync(`/proc/${pid}/cmdline`, "utf8").startsWith("nginx")).toBe(false);
    expect(ngx.errorLog()).toContain("exit"); // still readable after the prefix is gone
    expect(existsSync(ngx.prefix)).toBe(false);
  });
});

describe("deploy/nginx/coder-tls.conf", () => {
  const block = (site: string, re: RegExp) => {
    const m = re.exec(site);
    if (!m) throw new Error(`no ${re} block`);
    return m[0];
  };

  it("has the same map, upstream and location as coder.conf", () => {
    for (const re of [/^map [\s\S]*?^\}/m, /^upstream [\s\S]*?^\}/m, /^ {4}location \/ \{[\s\S]*?^ {4}\}/m]) {
      expect(block(shippedTls, re)).toBe(block(shipped, re));
    }
    expect(directive(shippedTls, "client_max_body_size")).toBe(directive(shipped, "client_max_body_size"));
  });

  it("serves HTTPS and WSS to the replicas and redirects plain HTTP", async () => {
    const { cert, key } = certFiles();
    const certPem = TEST_CERT;
    const replace = { "/etc/ssl/coder/fullchain.pem": cert, "/etc/ssl/coder/privkey.pem": key };
    const tested = await checkConfig(shippedTls.split("/etc/ssl/coder/fullchain.pem").join(cert).split("/etc/ssl/coder/privkey.pem").join(key));
    expect(tested.ok, tested.output).toBe(true);

    const ups = await startUpstreams(2);
    const ngx = await startNginx(ups.map((u) => u.addr), { conf: SHIPPED_TLS_CONF, replace });
    const tlsPort = ngx.ports.get(443)!;
    const tls = { ca: certPem, servername: "coder.example.com" };

    const res = await request(`https://127.0.0.1:${tlsPort}/whoami`, { ...tls, headers: { host: "coder.example.com" } });
    expect(res.status).toBe(200);
    expect(res.headers["strict-transport-security"]).toBe("max-age=31536000");
    const who = JSON.parse(res.body.toString()) as WhoAmI;
    expect(who.headers["x-forwarded-proto"]).toBe("https");
    expect(who.headers.host).toBe("coder.example.com");

    // ws hands these options to tls.connect (SNI and verification against a wildcard app name).
    const wssOpts: ClientOptions & { servername: string } = { ca: certPem, servername: "x--y--z.apps.example.com" };
    const { ws, next } = await openWs(`wss://127.0.0.1:${tlsPort}/ws`, wssOpts);
    expect((await next()).data.toString()).toMatch(/^hello from replica-/);
    ws.send(Buffer.from("over tls"));
    expect((await next()).data.toString()).toBe("over tls");
    ws.close();

    const redirect = await request(`http://127.0.0.1:${ngx.ports.get(80)!}/templates?x=1`, { headers: { host: "coder.example.com" } });
    expect(redirect.status).toBe(301);
    expect(redirect.headers.location).toBe("https://coder.example.com/templates?x=1");
  });
});
