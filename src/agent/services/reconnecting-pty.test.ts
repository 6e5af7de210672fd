// Reconnecting PTYs with real shells on real PTYs, clients on loopback TCP sockets.
import { once } from "node:events";
import type { Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ReconnectingPtys, type ReconnectingPtyOptions } from "./reconnecting-pty.js";
import { Capture, socketPair } from "./testutil/pair.js";

let ptys: ReconnectingPtys | undefined;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await ptys?.close();
  ptys = undefined;
});

function setup(opts: ReconnectingPtyOptions = {}): ReconnectingPtys {
  ptys = new ReconnectingPtys({ shell: "/bin/sh", ...opts });
  return ptys;
}

/** A client attached to the PTY `id`: its socket and everything it received. */
async function attach(id: string, size = { width: 80, height: 24 }, command?: string) {
  const [client, server] = await socketPair();
  sockets.push(client, server);
  void ptys!.serve(server, { id, ...size, command });
  return { socket: client, out: new Capture(client), send: (msg: object) => client.write(JSON.stringify(msg) + "\n") };
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("ReconnectingPtys", () => {
  it("keeps the shell across a reconnect and replays recent output", async () => {
    const p = setup();
    const a = await attach("term-1");
    a.send({ data: "echo hello-$((1+2)); echo pid-$$-end\r" });
    await a.out.waitFor(/hello-3/);
    const pid = (await a.out.waitFor(/pid-(\d+)-end/))[1];
    expect(p.count).toBe(1);

    a.socket.end();
    await a.out.ended;

    const b = await attach("term-1");
    // The replay arrives before anything new: the client sees what it missed.
    await b.out.waitFor(/hello-3/);
    b.send({ data: "echo again-$$-end\r" });
    expect((await b.out.waitFor(/again-(\d+)-end/))[1]).toBe(pid);
    expect(p.count).toBe(1);
  });

  it("resizes on a message and on reattach", async () => {
    setup();
    const a = await attach("term-size", { width: 80, height: 24 });
    a.send({ width: 120, height: 40 });
    a.send({ data: "echo size-$(stty size)-end\r" });
    expect((await a.out.waitFor(/size-(\d+ \d+)-end/))[1]).toBe("40 120");
    a.socket.destroy();
    await a.out.ended;

    const b = await attach("term-size", { width: 100, height: 30 });
    b.send({ data: "echo size2-$(stty size)-end\r" });
    expect((await b.out.waitFor(/size2-(\d+ \d+)-end/))[1]).toBe("30 100");
  });

  it("sends output to every attached client", async () => {
    setup();
    const a = await attach("term-shared");
    const b = await attach("term-shared");
    a.send({ data: "echo shared-$((6*7))\r" });
    await Promise.all([a.out.waitFor(/shared-42/), b.out.waitFor(/shared-42/)]);
  });

  it("kills a PTY left without clients for timeoutMs, and forgets its id", async () => {
    const p = setup({ timeoutMs: 150 });
    const a = await attach("term-idle");
    a.send({ data: "echo pid-$$-end\r" });
    const pid = Number((await a.out.waitFor(/pid-(\d+)-end/))[1]);
    const exited = once(p, "exit");
    a.socket.destroy();
    expect(await exited).toEqual(["term-idle"]);
    expect(p.count).toBe(0);
    expect(alive(pid)).toBe(false);

    // The same id now starts a new shell.
    const b = await attach("term-idle");
    b.send({ data: "echo pid2-$$-end\r" });
    expect(Number((await b.out.waitFor(/pid2-(\d+)-end/))[1])).not.toBe(pid);
  });

  it("cancels the idle timer when a client reattaches", async () => {
    const p = setup({ timeoutMs: 200 });
    const a = await attach("term-back");
    a.send({ data: "echo pid-$$-end\r" });
    const pid = (await a.out.waitFor(/pid-(\d+)-end/))[1];
    a.socket.destroy();
    await a.out.ended;
    const b = await attach("term-back");
    // Nothing to await for "did not happen": outlast the timeout, then look.
    await new Promise((r) => setTimeout(r, 500));
    b.send({ data: "echo pid-$$-again\r" });
    expect((await b.out.waitFor(/pid-(\d+)-again/))[1]).toBe(pid);
    expect(p.count).toBe(1);
  });

  it("ends the streams when the command exits, and forgets the id", async () => {
    const p = setup();
    const exited = once(p, "exit");
    const a = await attach("term-cmd", undefined, "echo out-$((2*3)); exit 3");
    await a.out.ended;
    expect(a.out.text).toContain("out-6");
    await exited;
    expect(p.count).toBe(0);
  });

  it("ends only the client that sends malformed input", async () => {
    const p = setup();
    const good = await attach("term-bad");
    good.send({ data: "echo pid-$$-end\r" });
    const pid = (await good.out.waitFor(/pid-(\d+)-end/))[1];

    const notJson = await attach("term-bad");
    notJson.socket.write("this is not json\n");
    await notJson.out.ended;

    const wrongType = await attach("term-bad");
    wrongType.send({ data: 42 });
    await wrongType.out.ended;

    const badSize = await attach("term-bad");
    badSize.send({ width: 0, height: 10 });
    await badSize.out.ended;

    const huge = await attach("term-bad");
    huge.socket.write(Buffer.alloc(1024 * 1024 + 10, "a"));
    await huge.out.ended;

    good.send({ data: "echo pid-$$-still\r" });
    expect((await good.out.waitFor(/pid-(\d+)-still/))[1]).toBe(pid);
    expect(p.count).toBe(1);
  });

  it("drops a client that stops reading without stalling the others", async () => {
    const warnings: unknown[][] = [];
    const p = setup({ maxClientBacklogBytes: 256 * 1024, logger: { warn: (...a) => warnings.push(a) } });
    const fast = await attach("term-slow");
    const slow = await attach("term-slow");
    slow.socket.pause();
    // Far more output than the kernel's socket buffers hold for the stalled client.
    fast.send({ data: "head -c 32000000 /dev/zero | tr '\\0' x; echo; echo done-$((5*5))\r" });
    await fast.out.waitFor(/done-25/, 30_000);
    // The server dropped the slow client: once it reads again it sees its stream end.
    slow.socket.resume();
    await slow.out.ended;
    expect(warnings.map((w) => w[1])).toContain("pty: dropping a client that stopped reading");
    expect(p.count).toBe(1);
  });

  it("holds the program back for a lone slow client instead of dropping it", async () => {
    setup({ maxClientBacklogBytes: 256 * 1024 });
    const a = await attach("term-lone");
    a.socket.pause();
    a.send({ data: "head -c 16000000 /dev/zero | tr '\\0' x; echo; echo done-$((5*5))\r" });
    // Nothing to await for "is being held back": give the output time to pile up, then read.
    await new Promise((r) => setTimeout(r, 300));
    a.socket.resume();
    await a.out.waitFor(/done-25/, 30_000);
    expect(a.socket.readableEnded).toBe(false);
  });

  it("tells the client when the shell cannot start", async () => {
    ptys = new ReconnectingPtys({ shell: "/nonexistent/shell" });
    const a = await attach("term-broken");
    await a.out.ended;
    expect(ptys.count).toBe(0);
  });

  it("kills every PTY on close", async () => {
    const p = setup();
    const a = await attach("term-close-1");
    const b = await attach("term-close-2");
    a.send({ data: "echo pid-$$-end\r" });
    b.send({ data: "echo pid-$$-end\r" });
    const pids = [Number((await a.out.waitFor(/pid-(\d+)-end/))[1]), Number((await b.out.waitFor(/pid-(\d+)-end/))[1])];
    await p.close();
    await Promise.all([a.out.ended, b.out.ended]);
    expect(p.count).toBe(0);
    expect(pids.map(alive)).toEqual([false, false]);
  });
});
