// AgentServices end to end: real SSH server and client, real PTYs, real TCP, over socket pairs
// standing in for the tunnel's streams.
import { once } from "node:events";
import { createServer, type Server, type Socket } from "node:net";
import ssh2 from "ssh2";
import { afterEach, describe, expect, it } from "vitest";
import { AgentSshServer, generateHostKey } from "../ssh/index.js";
import { AgentServices, ReconnectingPtys, runSpeedtest } from "./index.js";
import { Capture, socketPair } from "./testutil/pair.js";

let services: AgentServices | undefined;
let sshServer: AgentSshServer | undefined;
const servers: Server[] = [];
const sockets: Socket[] = [];
const warnings: unknown[][] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await services?.close();
  await sshServer?.close();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  services = sshServer = undefined;
  warnings.length = 0;
});

function setup(ssh?: { handle(stream: import("node:stream").Duplex): Promise<void> }): AgentServices {
  sshServer = new AgentSshServer({ hostKey: generateHostKey(), shell: "/bin/sh" });
  services = new AgentServices({
    ssh: ssh ?? sshServer,
    ptys: new ReconnectingPtys({ shell: "/bin/sh" }),
    logger: { warn: (...a) => warnings.push(a) },
  });
  return services;
}

async function pair(): Promise<[Socket, Socket]> {
  const p = await socketPair({ allowHalfOpen: true });
  sockets.push(...p);
  return p;
}

async function echoServer(): Promise<number> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.push(s);
    s.on("error", () => {});
    s.pipe(s);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return (server.address() as { port: number }).port;
}

const idle = { sessions: { ssh: 0, reconnecting_pty: 0, speedtest: 0, tcp: 0 }, connections: 0 };

describe("AgentServices", () => {
  it("destroys the stream on a bad header, without throwing, and says which field", async () => {
    const s = setup();
    const bad: unknown[] = [null, "ssh", {}, { service: "telnet" }, { service: "tcp", port: 0 }, { service: "pty", id: "../x", width: 80, height: 24 }];
    for (const header of bad) {
      const [client, agent] = await pair();
      const out = new Capture(client);
      expect(() => s.handle(header, agent)).not.toThrow();
      expect(agent.destroyed).toBe(true);
      await out.ended;
    }
    expect(warnings.map((w) => (w[0] as { err: string }).err)).toEqual([
      expect.stringMatching(/header/),
      expect.stringMatching(/header/),
      expect.stringMatching(/service/),
      expect.stringMatching(/service/),
      expect.stringMatching(/port/),
      expect.stringMatching(/id/),
    ]);
    expect(s.stats()).toMatchObject({ ...idle, rx_bytes: 0, tx_bytes: 0 });
  });

  it("forwards TCP, counting the session while open and every byte each way", async () => {
    const s = setup();
    const port = await echoServer();
    const [client, agent] = await pair();
    s.handle({ service: "tcp", port }, agent);
    expect(s.stats()).toMatchObject({ sessions: { tcp: 1 }, connections: 1 });
    const out = new Capture(client);
    client.write("hello ");
    await out.waitFor(/hello /);
    client.end("world");
    await out.ended;
    expect(out.text).toBe("hello world");
    if (!agent.closed) await once(agent, "close");
    expect(s.stats()).toEqual({ ...idle, rx_bytes: 11, tx_bytes: 11 });
  });

  it("serves SSH", async () => {
    const s = setup();
    const [client, agent] = await pair();
    s.handle({ service: "ssh" }, agent);
    const conn = new ssh2.Client();
    conn.connect({ sock: client, username: "coder" });
    await once(conn, "ready");
    expect(s.stats().sessions.ssh).toBe(1);
    const output = await new Promise<string>((resolve, reject) => {
      conn.exec("echo ssh-$((20+1))", (err, ch) => {
        if (err) return reject(err);
        let text = "";
        ch.on("data", (d: Buffer) => (text += d.toString()));
        ch.on("close", () => resolve(text));
      });
    });
    expect(output).toBe("ssh-21\n");
    conn.end();
    if (!agent.closed) await once(agent, "close");
    expect(s.stats()).toMatchObject(idle);
    expect(s.stats().rx_bytes).toBeGreaterThan(0);
  });

  it("serves reconnecting PTYs, and close() ends them", async () => {
    const s = setup();
    const [client, agent] = await pair();
    s.handle({ service: "pty", id: "svc-pty", width: 80, height: 24 }, agent);
    const out = new Capture(client);
    client.write(JSON.stringify({ data: "echo pty-$((3*3))\r" }) + "\n");
    await out.waitFor(/pty-9/);
    expect(s.stats().sessions.reconnecting_pty).toBe(1);
    await s.close();
    await out.ended;
    expect(s.stats()).toMatchObject(idle);
  });

  it("serves speed tests, whose bytes show in tx", async () => {
    const s = setup();
    const [client, agent] = await pair();
    s.handle({ service: "speedtest", direction: "down", duration_ms: 200 }, agent);
    const result = await runSpeedtest(client, { direction: "down", duration_ms: 200 });
    if (!agent.closed) await once(agent, "close");
    expect(result.bytes).toBeGreaterThan(0);
    expect(s.stats()).toMatchObject({ ...idle, tx_bytes: result.bytes });
  });

  it("survives a service that throws, ending only that stream", async () => {
    const s = setup({
      handle: () => {
        throw new Error("broken on purpose");
      },
    });
    const [client, agent] = await pair();
    const out = new Capture(client);
    expect(() => s.handle({ service: "ssh" }, agent)).not.toThrow();
    await out.ended;
    if (!agent.closed) await once(agent, "close");
    expect(warnings.map((w) => w[1])).toContain("agent: service failed");
    expect(s.stats()).toMatchObject(idle);
  });

  it("refuses streams after close()", async () => {
    const s = setup();
    await s.close();
    const [client, agent] = await pair();
    const out = new Capture(client);
    s.handle({ service: "ssh" }, agent);
    await out.ended;
    expect(s.stats()).toMatchObject(idle);
  });
});
