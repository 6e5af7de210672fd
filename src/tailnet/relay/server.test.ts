import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { generateKeyPair, sign } from "../keys.js";
import {
  authMessage,
  CloseCode,
  encodeAuth,
  encodePing,
  encodeSend,
  FrameType,
  MAX_BODY,
  MAX_FRAME,
} from "./frames.js";
import { RawPeer, startRelay, type TestRelay, turns } from "./testutil/index.js";
import type { RelayServerOptions } from "./server.js";
import type { ServerOptions } from "ws";

let relays: TestRelay[] = [];
let peers: RawPeer[] = [];

async function relayFor(opts: RelayServerOptions & { ws?: ServerOptions } = {}): Promise<TestRelay> {
  const r = await startRelay(opts);
  relays.push(r);
  return r;
}

async function authed(url: string, keyPair = generateKeyPair()) {
  const p = await RawPeer.auth(url, keyPair);
  peers.push(p);
  return p;
}

async function opened(url: string) {
  const p = await RawPeer.open(url);
  peers.push(p);
  return p;
}

afterEach(async () => {
  for (const p of peers) p.ws.terminate();
  for (const r of relays) await r.close();
  relays = [];
  peers = [];
});

/** A→B SEND arrives as RECV from A with the same body. */
async function expectForwarding(a: RawPeer & { keyPair: { publicKey: Buffer } }, b: RawPeer & { keyPair: { publicKey: Buffer } }) {
  const body = Buffer.from(`hello ${Math.random()}`);
  a.send(encodeSend(b.keyPair.publicKey, body));
  const f = await b.nextFrame();
  expect(f).toEqual({ type: FrameType.RECV, src: a.keyPair.publicKey, body });
}

describe("RelayServer authentication", () => {
  it("admits a key that signs the challenge, and reports it", async () => {
    const { relay, url } = await relayFor();
    const events: Array<[string, boolean]> = [];
    relay.on("peer", (key, connected) => events.push([key.toString("hex"), connected]));
    const kp = generateKeyPair();
    const p = await authed(url, kp);
    expect(relay.peers().map((k) => k.toString("hex"))).toEqual([kp.publicKey.toString("hex")]);
    expect(relay.hasPeer(kp.publicKey)).toBe(true);
    expect(events).toEqual([[kp.publicKey.toString("hex"), true]]);
    const gone = once(relay, "peer");
    p.ws.close();
    await gone;
    expect(events[1]).toEqual([kp.publicKey.toString("hex"), false]);
    expect(relay.stats().peers).toBe(0);
  });

  it("closes 4001 on a bad signature", async () => {
    const { url } = await relayFor();
    const p = await opened(url);
    const challenge = await p.nextFrame();
    if (challenge.type !== FrameType.CHALLENGE) throw new Error("no challenge");
    const kp = generateKeyPair();
    const sig = sign(kp, authMessage(challenge.challenge));
    sig[0]! ^= 0x01;
    p.send(encodeAuth(kp.publicKey, sig));
    expect(await p.closed).toEqual({ code: CloseCode.AUTH_FAILED, reason: "bad signature" });
  });

  it("closes 4001 when the signature is another key's or over another challenge", async () => {
    const { relay, url } = await relayFor();
    const p = await opened(url);
    const challenge = await p.nextFrame();
    if (challenge.type !== FrameType.CHALLENGE) throw new Error("no challenge");
    const claimed = generateKeyPair();
    const signer = generateKeyPair();
    p.send(encodeAuth(claimed.publicKey, sign(signer, authMessage(challenge.challenge))));
    expect((await p.closed).code).toBe(CloseCode.AUTH_FAILED);

    const q = await opened(url);
    await q.nextFrame();
    // A valid signature, but over a challenge the server did not send (a replay).
    q.send(encodeAuth(claimed.publicKey, sign(claimed, authMessage(Buffer.alloc(32)))));
    expect(await q.closed).toEqual({ code: CloseCode.AUTH_FAILED, reason: "bad signature" });
    expect(relay.peers()).toEqual([]);
  });

  it("closes 4001 on garbage, text and frames other than AUTH before authentication", async () => {
    const { url } = await relayFor();
    const cases: Array<[Buffer | string, RegExp]> = [
      [Buffer.from([0xff, 1, 2, 3]), /malformed AUTH/],
      [Buffer.from([FrameType.AUTH, 1, 2]), /malformed AUTH: AUTH frame must be/],
      ["AUTH please", /text messages/],
      [encodeSend(Buffer.alloc(32), Buffer.from("x")), /expected AUTH/],
    ];
    for (const [msg, reason] of cases) {
      const p = await opened(url);
      await p.nextFrame();
      p.send(msg);
      const closed = await p.closed;
      expect(closed.code).toBe(CloseCode.AUTH_FAILED);
      expect(closed.reason).toMatch(reason);
    }
  });

  it("closes 4001 when the handshake takes too long", async () => {
    const { url } = await relayFor({ handshakeTimeoutMs: 50 });
    const p = await opened(url);
    expect(await p.closed).toEqual({ code: CloseCode.AUTH_FAILED, reason: "handshake timeout" });
  });

  it("asks the authorize hook, and closes 4001 for keys it refuses", async () => {
    const allowed = generateKeyPair();
    const seen: string[] = [];
    const { url } = await relayFor({
      authorize: async (key, addr) => {
        seen.push(String(addr));
        return key.equals(allowed.publicKey);
      },
    });
    await authed(url, allowed);
    const p = await opened(url);
    const challenge = await p.nextFrame();
    if (challenge.type !== FrameType.CHALLENGE) throw new Error("no challenge");
    const other = generateKeyPair();
    p.send(encodeAuth(other.publicKey, sign(other, authMessage(challenge.challenge))));
    expect(await p.closed).toEqual({ code: CloseCode.AUTH_FAILED, reason: "key not authorized" });
    expect(seen).toEqual(["127.0.0.1", "127.0.0.1"]);
  });

  it("replaces an older connection with the same key (4002), keeping the key present", async () => {
    const { relay, url } = await relayFor();
    const kp = generateKeyPair();
    const events: boolean[] = [];
    relay.on("peer", (_key, connected) => events.push(connected));
    const first = await authed(url, kp);
    const second = await authed(url, kp);
    expect(await first.closed).toEqual({ code: CloseCode.REPLACED, reason: "replaced" });
    expect(events).toEqual([true]);
    expect(relay.stats().peers).toBe(1);
    const other = await authed(url);
    await expectForwarding(other, second);
  });
});

describe("RelayServer forwarding", () => {
  it("forwards SEND as RECV from the sender, binary and byte-exact, up to the maximum body", async () => {
    const { relay, url } = await relayFor();
    const a = await authed(url);
    const b = await authed(url);
    await expectForwarding(a, b);
    await expectForwarding(b, a);
    const big = Buffer.alloc(MAX_BODY, 7);
    a.send(encodeSend(b.keyPair.publicKey, big));
    const f = await b.nextFrame();
    if (f.type !== FrameType.RECV) throw new Error("expected RECV");
    expect(f.src.equals(a.keyPair.publicKey) && f.body.equals(big)).toBe(true);
    expect(relay.stats()).toMatchObject({ peers: 2, frames_forwarded: 3, frames_dropped: 0 });
    expect(relay.stats().bytes_forwarded).toBeGreaterThan(MAX_BODY);
  });

  it("answers PING with PONG", async () => {
    const { url } = await relayFor();
    const a = await authed(url);
    a.send(encodePing(Buffer.from("12345678")));
    expect(await a.nextFrame()).toEqual({ type: FrameType.PONG, payload: Buffer.from("12345678") });
  });

  it("answers a SEND to an absent key with PEER_GONE, once per key for a burst", async () => {
    const { relay, url } = await relayFor();
    const a = await authed(url);
    const absent = generateKeyPair().publicKey;
    for (let i = 0; i < 20; i++) a.send(encodeSend(absent, Buffer.from([i])));
    a.send(encodePing());
    const got: number[] = [];
    for (;;) {
      const f = await a.nextFrame();
      if (f.type === FrameType.PONG) break;
      expect(f).toEqual({ type: FrameType.PEER_GONE, key: absent });
      got.push(f.type);
    }
    expect(got.length).toBeGreaterThanOrEqual(1);
    expect(got.length).toBeLessThan(20);
    expect(relay.stats().frames_forwarded).toBe(0);
  });

  it("tells peers that sent to a key when it disconnects", async () => {
    const { url } = await relayFor();
    const a = await authed(url);
    const b = await authed(url);
    await expectForwarding(a, b);
    b.ws.close();
    expect(await a.nextFrame()).toEqual({ type: FrameType.PEER_GONE, key: b.keyPair.publicKey });
  });

  it("hands unknown destinations to the mesh hook, delivers mesh frames, relays mesh departures", async () => {
    const { relay, url } = await relayFor();
    const a = await authed(url);
    const remote = generateKeyPair().publicKey;
    const handed: Array<[Buffer, Buffer, Buffer]> = [];
    relay.onUnknownDestination = (src, dst, body) => {
      handed.push([Buffer.from(src), Buffer.from(dst), Buffer.from(body)]);
      return true;
    };
    a.send(encodeSend(remote, Buffer.from("to the mesh")));
    a.send(encodePing());
    expect((await a.nextFrame()).type).toBe(FrameType.PONG); // no PEER_GONE before it
    expect(handed).toEqual([[a.keyPair.publicKey, remote, Buffer.from("to the mesh")]]);

    expect(relay.deliver(remote, a.keyPair.publicKey, Buffer.from("from the mesh"))).toBe(true);
    expect(await a.nextFrame()).toEqual({ type: FrameType.RECV, src: remote, body: Buffer.from("from the mesh") });
    expect(relay.deliver(remote, generateKeyPair().publicKey, Buffer.from("x"))).toBe(false);

    relay.notifyPeerGone(remote);
    expect(await a.nextFrame()).toEqual({ type: FrameType.PEER_GONE, key: remote });

    // forward() routes like a SEND: local first, then the hook, else PEER_GONE to a local source.
    const b = await authed(url);
    expect(relay.forward(remote, b.keyPair.publicKey, Buffer.from("via forward"))).toBe(true);
    expect(await b.nextFrame()).toEqual({ type: FrameType.RECV, src: remote, body: Buffer.from("via forward") });
    relay.onUnknownDestination = () => false;
    expect(relay.forward(a.keyPair.publicKey, remote, Buffer.from("x"))).toBe(false);
    expect(await a.nextFrame()).toEqual({ type: FrameType.PEER_GONE, key: remote });
  });

  it("drops (and counts) frames to a destination whose queue is full, without stalling others", async () => {
    const limit = 1024 * 1024;
    const { relay, url } = await relayFor({ maxQueueBytes: limit });
    const a = await authed(url);
    const slow = await authed(url);
    const c = await authed(url);
    const d = await authed(url);
    // The slow peer stops reading its socket: the relay's queue for it fills up.
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const body = Buffer.alloc(64 * 1024, 1);
    const frames = 400; // 25 MiB, far beyond the limit and the kernel's buffers
    for (let i = 0; i < frames; i++) a.send(encodeSend(slow.keyPair.publicKey, body));
    // Meanwhile c → d flows.
    await expectForwarding(c, d);
    a.send(encodePing());
    expect((await a.nextFrame()).type).toBe(FrameType.PONG); // the relay has read every SEND of a
    await expectForwarding(c, d);
    const stats = relay.stats();
    expect(stats.frames_dropped).toBeGreaterThan(0);
    expect(stats.frames_dropped + stats.frames_forwarded).toBe(frames + 2);
    expect(relay.queuedBytes(slow.keyPair.publicKey)).toBeLessThanOrEqual(limit);
    expect(stats.bytes_dropped).toBe(stats.frames_dropped * body.length);
  });
});

describe("RelayServer bad input", () => {
  it("closes only the offending connection with 1007 for malformed frames", async () => {
    const { relay, url } = await relayFor();
    const c = await authed(url);
    const d = await authed(url);
    const cases: Array<[Buffer | string, RegExp]> = [
      [Buffer.from([0x7f, 0, 1]), /unexpected frame type 0x7f/],
      [Buffer.from([FrameType.SEND, 1, 2, 3]), /shorter/],
      [Buffer.from([FrameType.RECV, ...Buffer.alloc(40)]), /unexpected frame type 0x05/],
      [Buffer.alloc(0), /unexpected frame type 0x00/],
      ["{\"type\":\"send\"}", /text messages/],
      [Buffer.alloc(1 + 100, FrameType.PING), /PING payload/],
    ];
    for (const [msg, reason] of cases) {
      const p = await authed(url);
      p.send(msg);
      const closed = await p.closed;
      expect(closed.code).toBe(CloseCode.INVALID_DATA);
      expect(closed.reason).toMatch(reason);
    }
    await expectForwarding(c, d);
    expect(relay.stats().peers).toBe(2);
  });

  it("closes 1009 on an oversized frame, enforced by ws's maxPayload", async () => {
    const { url } = await relayFor();
    const c = await authed(url);
    const d = await authed(url);
    const p = await authed(url);
    p.send(Buffer.alloc(MAX_FRAME + 1, FrameType.SEND));
    expect((await p.closed).code).toBe(CloseCode.TOO_BIG);
    await expectForwarding(c, d);
  });

  it("closes 1009 on an oversized frame even when the WebSocketServer allows it", async () => {
    const { url } = await relayFor({ ws: { maxPayload: 4 * MAX_FRAME } });
    const c = await authed(url);
    const d = await authed(url);
    const p = await authed(url);
    p.send(Buffer.alloc(MAX_FRAME + 1, FrameType.SEND));
    const closed = await p.closed;
    expect(closed.code).toBe(CloseCode.TOO_BIG);
    expect(closed.reason).toMatch(/exceeds/);
    await expectForwarding(c, d);
  });

  it("closes peers that stop answering keepalive pings", async () => {
    const { relay, url } = await relayFor({ keepaliveIntervalMs: 30 });
    const quiet = await authed(url);
    const lively = await authed(url);
    // lively answers every PING; quiet never does.
    lively.ws.on("message", (data: Buffer) => {
      if (data[0] === FrameType.PING) {
        data[0] = FrameType.PONG;
        lively.ws.send(data);
      }
    });
    const gone = new Promise<Buffer>((resolve) =>
      relay.on("peer", (key, connected) => {
        if (!connected) resolve(key);
      }),
    );
    expect((await gone).equals(quiet.keyPair.publicKey)).toBe(true);
    await quiet.closed;
    await turns();
    expect(relay.hasPeer(lively.keyPair.publicKey)).toBe(true);
  });

  it("refuses new sockets after close() and closes existing ones with 1001", async () => {
    const r = await relayFor();
    const a = await authed(r.url);
    r.relay.close();
    expect((await a.closed).code).toBe(CloseCode.GOING_AWAY);
  });
});
