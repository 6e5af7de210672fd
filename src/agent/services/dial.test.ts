// Port forwarding to real TCP servers on loopback, the tunnel's stream played by a socket pair.
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { serveTcp } from "./dial.js";
import { Capture, socketPair } from "./testutil/pair.js";

const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A server that echoes, and once the client shuts down its side, reports the total and ends. */
async function echoServer(onConnection?: (s: Socket) => void): Promise<number> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.push(s);
    onConnection?.(s);
    let n = 0;
    s.on("data", (d: Buffer) => {
      n += d.length;
      s.write(d);
    });
    s.on("end", () => s.end(`\ntotal=${n}`));
    s.on("error", () => {});
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return (server.address() as { port: number }).port;
}

async function pair(): Promise<[Socket, Socket]> {
  const p = await socketPair({ allowHalfOpen: true });
  sockets.push(...p);
  return p;
}

describe("serveTcp", () => {
  it("carries bytes both ways and passes each side's EOF on", async () => {
    const port = await echoServer();
    const [client, agent] = await pair();
    const served = serveTcp(agent, port);
    const out = new Capture(client);
    client.write("ping");
    await out.waitFor(/ping/);
    // Our EOF reaches the server, whose reply after it still comes back.
    client.end();
    await out.ended;
    expect(out.text).toBe("ping\ntotal=4");
    await served;
  });

  it("moves a large transfer intact, with backpressure", async () => {
    const port = await echoServer();
    const [client, agent] = await pair();
    const served = serveTcp(agent, port);
    const data = randomBytes(16 * 1024 * 1024);
    const hash = createHash("sha256");
    let received = 0;
    client.on("data", (d: Buffer) => {
      // The echo's trailer comes after exactly data.length bytes.
      const body = d.subarray(0, Math.max(0, Math.min(d.length, data.length - received)));
      hash.update(body);
      received += d.length;
    });
    client.end(data);
    await once(client, "end");
    expect(hash.digest("hex")).toBe(createHash("sha256").update(data).digest("hex"));
    await served;
  });

  it("ends the stream promptly when nothing listens on the port", async () => {
    const port = await echoServer();
    await new Promise((r) => servers.pop()!.close(r));
    const [client, agent] = await pair();
    const out = new Capture(client);
    client.write("anyone?");
    await serveTcp(agent, port);
    await out.ended;
    expect(out.text).toBe("");
  });

  it("closes the workspace-side connection when the client vanishes", async () => {
    let accepted!: (s: Socket) => void;
    const serverSide = new Promise<Socket>((resolve) => (accepted = resolve));
    const port = await echoServer((s) => accepted(s));
    const [client, agent] = await pair();
    const served = serveTcp(agent, port);
    const closed = once(await serverSide, "close");
    client.destroy();
    await closed;
    await served;
  });

  it("ends the stream when the workspace side resets", async () => {
    const port = await echoServer((s) => s.resetAndDestroy());
    const [client, agent] = await pair();
    const out = new Capture(client);
    await serveTcp(agent, port);
    await out.ended;
  });
});
