import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTcpServer, type AddressInfo, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Client } from "./client.js";
import { httpRequest, readText } from "./http.js";

const closers: Array<() => void> = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

interface Seen {
  method: string;
  url: string;
  token: string | undefined;
  body: string;
}

/** An HTTP server on loopback that records each request and answers with handle's result. */
async function server(handle: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const srv: Server = createHttpServer(async (req, res) => {
    const body = await readText(req);
    seen.push({ method: req.method!, url: req.url!, token: req.headers["coder-session-token"] as string | undefined, body });
    handle(req, res, body);
  });
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  closers.push(() => srv.close());
  closers.push(() => srv.closeAllConnections());
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, seen };
}

const json = (res: ServerResponse, status: number, value: unknown) => res.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify(value));

describe("httpRequest", () => {
  it("follows redirects as fetch does: 307 keeps the method and body, 303 turns into a GET", async () => {
    const s = await server((req, res) => {
      if (req.url === "/a") return res.writeHead(307, { Location: "/b" }).end();
      if (req.url === "/b") return res.writeHead(303, { Location: "/c" }).end();
      json(res, 200, { at: req.url, method: req.method });
    });
    const res = await httpRequest(new URL("/a", s.url), { method: "POST", headers: { "Content-Type": "application/json" }, body: '{"x":1}' });
    expect(JSON.parse(await readText(res))).toEqual({ at: "/c", method: "GET" });
    expect(s.seen.map((r) => [r.method, r.url, r.body])).toEqual([
      ["POST", "/a", '{"x":1}'],
      ["POST", "/b", '{"x":1}'],
      ["GET", "/c", ""],
    ]);
  });

  it("keeps the session token within its origin when redirected", async () => {
    const other = await server((_req, res) => json(res, 200, {}));
    const home = await server((req, res) => {
      if (req.url === "/here") return res.writeHead(302, { Location: "/there" }).end();
      if (req.url === "/there") return res.writeHead(302, { Location: `${other.url}/away` }).end();
    });
    const client = new Client(home.url, { sessionToken: "secret-token" });
    await client.request("GET", "/here");
    expect(home.seen.map((r) => r.token)).toEqual(["secret-token", "secret-token"]);
    expect(other.seen).toEqual([{ method: "GET", url: "/away", token: undefined, body: "" }]);
  });

  it("sends a request again on a new connection when the server closed the kept-alive one it went out on", async () => {
    // Answers one request per connection with keep-alive, then hangs up on the next one unanswered,
    // as a server does when its idle timeout fires just as the request arrives.
    let connections = 0;
    const tcp = createTcpServer((sock: Socket) => {
      const n = ++connections;
      let buf = "";
      let answered = 0;
      sock.on("data", (d) => {
        buf += d.toString();
        while (buf.includes("\r\n\r\n")) {
          buf = buf.slice(buf.indexOf("\r\n\r\n") + 4);
          if (answered++ > 0) return sock.destroy();
          const body = JSON.stringify({ connection: n });
          sock.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: keep-alive\r\n\r\n${body}`);
        }
      });
    });
    await new Promise<void>((resolve) => tcp.listen(0, "127.0.0.1", resolve));
    closers.push(() => tcp.close());
    const client = new Client(`http://127.0.0.1:${(tcp.address() as AddressInfo).port}`);
    expect(await client.request("GET", "/one")).toEqual({ connection: 1 });
    expect(await client.request("GET", "/two")).toEqual({ connection: 2 });
    expect(connections).toBe(2);
  });

  it("gives up on a server that stops sending, before or during the response", async () => {
    const s = await server((req, res) => {
      if (req.url === "/stall-body") res.writeHead(200, { "Content-Length": "10" }).write("12345");
      // "/silent": no answer at all
    });
    const silent = httpRequest(new URL("/silent", s.url), { method: "GET", headers: {}, idleTimeoutMs: 200 });
    await expect(silent).rejects.toMatchObject({ code: "ETIMEDOUT", message: "the server sent nothing for 0.2s" });
    const stalled = await httpRequest(new URL("/stall-body", s.url), { method: "GET", headers: {}, idleTimeoutMs: 200 });
    expect(stalled.statusCode).toBe(200);
    await expect(readText(stalled)).rejects.toMatchObject({ code: "ETIMEDOUT" });
  });

  it("reports an unreachable server as status 0 with the cause", async () => {
    const tcp = createTcpServer();
    await new Promise<void>((resolve) => tcp.listen(0, "127.0.0.1", resolve));
    const port = (tcp.address() as AddressInfo).port;
    await new Promise((resolve) => tcp.close(resolve));
    const err = await new Client(`http://127.0.0.1:${port}`).buildInfo().catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 0, message: `Cannot reach http://127.0.0.1:${port}: ECONNREFUSED` });
  });
});
