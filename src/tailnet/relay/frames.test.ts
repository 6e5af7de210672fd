import { describe, expect, it } from "vitest";
import {
  ACCEPTOR_BIT,
  CloseCode,
  decodeFrame,
  decodePairBody,
  encodeAuth,
  encodeChallenge,
  encodeOk,
  encodePairSend,
  encodePeerGone,
  encodePing,
  encodeRecv,
  encodeSend,
  FrameError,
  FrameType,
  MAX_BODY,
  MAX_DATA,
  PairKind,
} from "./frames.js";

const key = Buffer.alloc(32, 0xab);

describe("relay frames", () => {
  it("round-trips every frame type with a 1-byte type prefix", () => {
    const challenge = Buffer.alloc(32, 1);
    expect(decodeFrame(encodeChallenge(challenge))).toEqual({ type: FrameType.CHALLENGE, challenge });
    const sig = Buffer.alloc(64, 2);
    expect(decodeFrame(encodeAuth(key, sig))).toEqual({ type: FrameType.AUTH, publicKey: key, signature: sig });
    expect(decodeFrame(encodeOk())).toEqual({ type: FrameType.OK });
    const body = Buffer.from("opaque ciphertext");
    const send = encodeSend(key, body);
    expect(send[0]).toBe(FrameType.SEND);
    expect(decodeFrame(send)).toEqual({ type: FrameType.SEND, dst: key, body });
    expect(decodeFrame(encodeRecv(key, body))).toEqual({ type: FrameType.RECV, src: key, body });
    expect(decodeFrame(encodePeerGone(key))).toEqual({ type: FrameType.PEER_GONE, key });
    expect(decodeFrame(encodePing(Buffer.from("x")))).toEqual({ type: FrameType.PING, payload: Buffer.from("x") });
    expect(decodeFrame(encodeSend(key, Buffer.alloc(MAX_BODY))).type).toBe(FrameType.SEND);
  });

  it("rejects malformed frames with the close code to use", () => {
    const bad = (buf: Buffer, code: number, msg: RegExp) => {
      let err: unknown;
      try {
        decodeFrame(buf);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FrameError);
      expect((err as FrameError).closeCode).toBe(code);
      expect((err as FrameError).message).toMatch(msg);
    };
    bad(Buffer.alloc(0), CloseCode.INVALID_DATA, /empty/);
    bad(Buffer.from([0x7f]), CloseCode.INVALID_DATA, /unknown frame type 0x7f/);
    bad(Buffer.from([FrameType.SEND, 1, 2]), CloseCode.INVALID_DATA, /shorter/);
    bad(Buffer.from([FrameType.AUTH, 1]), CloseCode.INVALID_DATA, /AUTH frame must be 97 bytes/);
    bad(Buffer.from([FrameType.OK, 0]), CloseCode.INVALID_DATA, /OK frame/);
    bad(Buffer.alloc(1 + 65, FrameType.PING), CloseCode.INVALID_DATA, /payload/);
    bad(Buffer.alloc(33 + MAX_BODY + 1, FrameType.SEND), CloseCode.TOO_BIG, /exceeds/);
    expect(() => encodeSend(key, Buffer.alloc(MAX_BODY + 1))).toThrow(/exceeds/);
    expect(() => encodeSend(Buffer.alloc(31), Buffer.alloc(1))).toThrow(/32 bytes/);
  });

  it("encodes pair bodies inside a SEND in one buffer", () => {
    const data = Buffer.from("hello");
    const frame = encodePairSend(key, PairKind.DATA, 7 | ACCEPTOR_BIT, 123, data);
    const f = decodeFrame(frame);
    if (f.type !== FrameType.SEND) throw new Error("not a SEND");
    expect(f.dst).toEqual(key);
    expect(decodePairBody(f.body)).toEqual({ kind: PairKind.DATA, id: (7 | ACCEPTOR_BIT) >>> 0, offset: 123, data });
    const body = (kind: number, id: number, value?: number, extra?: Buffer) =>
      decodePairBody(encodePairSend(key, kind as PairKind, id, value, extra).subarray(33));
    expect(body(PairKind.OPEN, 1, 4096)).toEqual({ kind: PairKind.OPEN, id: 1, window: 4096 });
    expect(body(PairKind.CREDIT, 0, 99)).toEqual({ kind: PairKind.CREDIT, id: 0, bytes: 99 });
    expect(body(PairKind.FIN, 2, 5)).toEqual({ kind: PairKind.FIN, id: 2, offset: 5 });
    expect(body(PairKind.RST, 3, undefined, Buffer.from("bye"))).toEqual({ kind: PairKind.RST, id: 3, reason: "bye" });
  });

  it("rejects malformed pair bodies", () => {
    expect(() => decodePairBody(Buffer.from([PairKind.DATA, 0, 0]))).toThrow(/shorter/);
    expect(() => decodePairBody(Buffer.from([0x09, 0, 0, 0, 1]))).toThrow(/unknown pair body kind/);
    expect(() => decodePairBody(Buffer.from([PairKind.OPEN, 0, 0, 0, 1]))).toThrow(/OPEN body/);
    expect(() => decodePairBody(Buffer.from([PairKind.CREDIT, 0, 0, 0, 1, 0, 0, 0, 0, 0]))).toThrow(/CREDIT body/);
    const big = encodePairSend(key, PairKind.DATA, 1, 0, Buffer.alloc(MAX_DATA + 1)).subarray(33);
    expect(() => decodePairBody(big)).toThrow(/exceeds/);
    const longRst = encodePairSend(key, PairKind.RST, 1, undefined, Buffer.alloc(300)).subarray(33);
    expect(() => decodePairBody(longRst)).toThrow(/RST reason/);
  });
});
