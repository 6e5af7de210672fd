// The relay's wire protocol: one binary WebSocket message per frame, a 1-byte type first.
//
//   server → client  CHALLENGE  [0x01][32 random bytes]
//   client → server  AUTH       [0x02][public key 32][ed25519 signature 64 of "coder-relay-v1" || challenge]
//   server → client  OK         [0x03]
//   client → server  SEND       [0x04][destination key 32][body]
//   server → client  RECV       [0x05][source key 32][body]
//   server → client  PEER_GONE  [0x06][key 32]       (a SEND's destination is not reachable here)
//   either way       PING       [0x07][payload ≤ 64] (answered by PONG with the same payload)
//   either way       PONG       [0x08][payload ≤ 64]
//
// A body is at most MAX_BODY bytes and opaque to the relay. SEND and RECV have the same layout, so
// the server forwards by rewriting the type byte and the key in place (no copy of the body).
//
// Inside bodies, RelayClient runs "pair streams" (see pair.ts); that layout is declared here too so
// all byte layouts live in one file:
//
//   [kind u8][conn id u32 BE][payload]
//   OPEN   payload [u32 the dialer's receive window]
//   DATA   payload [u32 stream offset of the first byte, mod 2^32][bytes ≤ MAX_DATA]
//   CREDIT payload [u32 bytes granted]   conn id 0: link credit (bytes received, any conn)
//   FIN    payload [u32 final stream offset, mod 2^32]
//   RST    payload [utf8 reason ≤ 256 bytes]
//
// Conn ids are chosen by the dialer (1 … 2^31-1); frames the acceptor sends carry the id with the
// top bit set, so both peers can dial each other with the same number without confusion.
//
// Between the relays of the replicas ("the mesh", WebSocket path /derp/mesh under a replica's
// relay URL, authenticated by the shared mesh key in the upgrade request), one binary message per
// frame, type bytes that never clash with the peer protocol's:
//
//   dialer → acceptor   FORWARD  [0x10][source key 32][destination key 32][body ≤ MAX_BODY]
//   acceptor → dialer   PRESENT  [0x11][n × key 32]   n ≥ 1, ≤ MAX_PRESENCE_KEYS: keys connected
//                                                      to the acceptor's relay (a full snapshot
//                                                      right after the upgrade, then increments)
//   acceptor → dialer   ABSENT   [0x12][n × key 32]   keys that left, or a FORWARD's destination
//                                                      that is not connected there
//   either way          PING [0x07] / PONG [0x08] as above
//
// So a replica learns where keys live from the links it dials, and delivers what arrives on the
// links it accepts to its own peers (never onwards: no loops).

export const FrameType = {
  CHALLENGE: 0x01,
  AUTH: 0x02,
  OK: 0x03,
  SEND: 0x04,
  RECV: 0x05,
  PEER_GONE: 0x06,
  PING: 0x07,
  PONG: 0x08,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export const KEY_LENGTH = 32;
export const SIGNATURE_LENGTH = 64;
export const CHALLENGE_LENGTH = 32;
export const MAX_PING_PAYLOAD = 64;
/** Largest body a SEND/RECV may carry. */
export const MAX_BODY = 256 * 1024;
/** Type byte + key before a SEND/RECV body. */
export const ADDRESSED_HEADER = 1 + KEY_LENGTH;
/** Largest WebSocket message either side accepts (use as the WebSocketServer's maxPayload). */
export const MAX_FRAME = ADDRESSED_HEADER + MAX_BODY;

/** Signed during AUTH before the challenge, so the signature means nothing elsewhere. */
export const AUTH_CONTEXT = Buffer.from("coder-relay-v1", "latin1");

export const MeshFrameType = {
  FORWARD: 0x10,
  PRESENT: 0x11,
  ABSENT: 0x12,
} as const;
export type MeshFrameType = (typeof MeshFrameType)[keyof typeof MeshFrameType];

/** Type byte + source key + destination key before a FORWARD body. */
export const MESH_FORWARD_HEADER = 1 + 2 * KEY_LENGTH;
/** Keys in one PRESENT/ABSENT frame at most (larger sets go in several frames). */
export const MAX_PRESENCE_KEYS = 4096;
/** Largest WebSocket message on a mesh link (maxPayload of both ends). */
export const MAX_MESH_FRAME = Math.max(MESH_FORWARD_HEADER + MAX_BODY, 1 + MAX_PRESENCE_KEYS * KEY_LENGTH);

/** Options for the `ws` WebSocketServer that upgrades /derp/mesh before handing sockets to RelayMesh. */
export const meshWebSocketServerOptions = { perMessageDeflate: false, maxPayload: MAX_MESH_FRAME } as const;

/** WebSocket close codes the relay uses. */
export const CloseCode = {
  GOING_AWAY: 1001,
  INVALID_DATA: 1007,
  TOO_BIG: 1009,
  AUTH_FAILED: 4001,
  REPLACED: 4002,
} as const;

/** Options for the `ws` WebSocketServer that upgrades /derp before handing sockets to RelayServer. */
export const relayWebSocketServerOptions = { perMessageDeflate: false, maxPayload: MAX_FRAME } as const;

export class FrameError extends Error {
  constructor(
    message: string,
    /** The close code the receiver should use. */
    readonly closeCode: number = CloseCode.INVALID_DATA,
  ) {
    super(message);
    this.name = "FrameError";
  }
}

export function authMessage(challenge: Uint8Array): Buffer {
  return Buffer.concat([AUTH_CONTEXT, challenge]);
}

function typed(type: FrameType, ...parts: Uint8Array[]): Buffer {
  let len = 1;
  for (const p of parts) len += p.length;
  const buf = Buffer.allocUnsafe(len);
  buf[0] = type;
  let off = 1;
  for (const p of parts) {
    buf.set(p, off);
    off += p.length;
  }
  return buf;
}

function checkKey(key: Uint8Array, what: string): void {
  if (key.length !== KEY_LENGTH) throw new FrameError(`${what} must be ${KEY_LENGTH} bytes, got ${key.length}`);
}

export function encodeChallenge(challenge: Uint8Array): Buffer {
  if (challenge.length !== CHALLENGE_LENGTH) throw new FrameError(`challenge must be ${CHALLENGE_LENGTH} bytes`);
  return typed(FrameType.CHALLENGE, challenge);
}

export function encodeAuth(publicKey: Uint8Array, signature: Uint8Array): Buffer {
  checkKey(publicKey, "public key");
  if (signature.length !== SIGNATURE_LENGTH) throw new FrameError(`signature must be ${SIGNATURE_LENGTH} bytes`);
  return typed(FrameType.AUTH, publicKey, signature);
}

export function encodeOk(): Buffer {
  return typed(FrameType.OK);
}

function addressed(type: FrameType, key: Uint8Array, body: Uint8Array): Buffer {
  checkKey(key, "key");
  if (body.length > MAX_BODY) throw new FrameError(`body of ${body.length} bytes exceeds ${MAX_BODY}`, CloseCode.TOO_BIG);
  return typed(type, key, body);
}

export function encodeSend(dst: Uint8Array, body: Uint8Array): Buffer {
  return addressed(FrameType.SEND, dst, body);
}

export function encodeRecv(src: Uint8Array, body: Uint8Array): Buffer {
  return addressed(FrameType.RECV, src, body);
}

export function encodePeerGone(key: Uint8Array): Buffer {
  checkKey(key, "key");
  return typed(FrameType.PEER_GONE, key);
}

export function encodePing(payload: Uint8Array = Buffer.alloc(0)): Buffer {
  if (payload.length > MAX_PING_PAYLOAD) throw new FrameError(`ping payload exceeds ${MAX_PING_PAYLOAD} bytes`);
  return typed(FrameType.PING, payload);
}

export function encodePong(payload: Uint8Array = Buffer.alloc(0)): Buffer {
  if (payload.length > MAX_PING_PAYLOAD) throw new FrameError(`pong payload exceeds ${MAX_PING_PAYLOAD} bytes`);
  return typed(FrameType.PONG, payload);
}

export type Frame =
  | { type: typeof FrameType.CHALLENGE; challenge: Buffer }
  | { type: typeof FrameType.AUTH; publicKey: Buffer; signature: Buffer }
  | { type: typeof FrameType.OK }
  | { type: typeof FrameType.SEND; dst: Buffer; body: Buffer }
  | { type: typeof FrameType.RECV; src: Buffer; body: Buffer }
  | { type: typeof FrameType.PEER_GONE; key: Buffer }
  | { type: typeof FrameType.PING; payload: Buffer }
  | { type: typeof FrameType.PONG; payload: Buffer };

function exact(buf: Buffer, len: number, name: string): void {
  if (buf.length !== len) throw new FrameError(`${name} frame must be ${len} bytes, got ${buf.length}`);
}

/**
 * Parses one frame. Keys, challenge and body are views into buf (no copies): copy what you keep
 * if buf will be reused. Throws FrameError (with the close code to use) on anything malformed.
 */
export function decodeFrame(buf: Buffer): Frame {
  if (buf.length === 0) throw new FrameError("empty frame");
  if (buf.length > MAX_FRAME) throw new FrameError(`frame of ${buf.length} bytes exceeds ${MAX_FRAME}`, CloseCode.TOO_BIG);
  const type = buf[0];
  switch (type) {
    case FrameType.CHALLENGE:
      exact(buf, 1 + CHALLENGE_LENGTH, "CHALLENGE");
      return { type, challenge: buf.subarray(1) };
    case FrameType.AUTH:
      exact(buf, 1 + KEY_LENGTH + SIGNATURE_LENGTH, "AUTH");
      return { type, publicKey: buf.subarray(1, 1 + KEY_LENGTH), signature: buf.subarray(1 + KEY_LENGTH) };
    case FrameType.OK:
      exact(buf, 1, "OK");
      return { type };
    case FrameType.SEND:
    case FrameType.RECV: {
      if (buf.length < ADDRESSED_HEADER) {
        throw new FrameError(`${type === FrameType.SEND ? "SEND" : "RECV"} frame shorter than its ${ADDRESSED_HEADER}-byte header`);
      }
      const key = buf.subarray(1, ADDRESSED_HEADER);
      const body = buf.subarray(ADDRESSED_HEADER);
      return type === FrameType.SEND ? { type, dst: key, body } : { type, src: key, body };
    }
    case FrameType.PEER_GONE:
      exact(buf, 1 + KEY_LENGTH, "PEER_GONE");
      return { type, key: buf.subarray(1) };
    case FrameType.PING:
    case FrameType.PONG:
      if (buf.length > 1 + MAX_PING_PAYLOAD) throw new FrameError(`PING/PONG payload exceeds ${MAX_PING_PAYLOAD} bytes`);
      return { type, payload: buf.subarray(1) };
    default:
      throw new FrameError(`unknown frame type 0x${(type ?? 0).toString(16).padStart(2, "0")}`);
  }
}

// ---- pair-stream bodies (inside SEND/RECV) ----

export const PairKind = {
  OPEN: 0x01,
  DATA: 0x02,
  CREDIT: 0x03,
  FIN: 0x04,
  RST: 0x05,
} as const;
export type PairKind = (typeof PairKind)[keyof typeof PairKind];

/** kind + conn id */
export const PAIR_HEADER = 5;
/**
 * Largest DATA payload (bytes of the stream) in one body: above one 64 KiB mux frame plus its
 * encryption overhead, so each encrypted message crosses the relay as one frame instead of a
 * full one and a 25-byte straggler.
 */
export const MAX_DATA = 128 * 1024;
export const MAX_RST_REASON = 256;
/** Set on conn ids in frames sent by the acceptor. */
export const ACCEPTOR_BIT = 0x80000000;
/** Conn id 0 carries link-level CREDIT. */
export const LINK_CONN_ID = 0;

/**
 * A complete SEND frame carrying a pair body, built with one allocation:
 * [SEND][dst][kind][id][u32 value?][data]. `value` is written when not undefined.
 */
export function encodePairSend(dst: Buffer, kind: PairKind, id: number, value?: number, data?: Uint8Array): Buffer {
  const valueLen = value === undefined ? 0 : 4;
  const dataLen = data === undefined ? 0 : data.length;
  const buf = Buffer.allocUnsafe(ADDRESSED_HEADER + PAIR_HEADER + valueLen + dataLen);
  buf[0] = FrameType.SEND;
  dst.copy(buf, 1);
  let off = ADDRESSED_HEADER;
  buf[off] = kind;
  buf.writeUInt32BE(id >>> 0, off + 1);
  off += PAIR_HEADER;
  if (value !== undefined) {
    buf.writeUInt32BE(value >>> 0, off);
    off += 4;
  }
  if (data !== undefined) buf.set(data, off);
  return buf;
}

export type PairBody =
  | { kind: typeof PairKind.OPEN; id: number; window: number }
  | { kind: typeof PairKind.DATA; id: number; offset: number; data: Buffer }
  | { kind: typeof PairKind.CREDIT; id: number; bytes: number }
  | { kind: typeof PairKind.FIN; id: number; offset: number }
  | { kind: typeof PairKind.RST; id: number; reason: string };

/** Parses a pair body; throws FrameError when malformed. `data` is a view into body. */
export function decodePairBody(body: Buffer): PairBody {
  if (body.length < PAIR_HEADER) throw new FrameError("pair body shorter than its header");
  const kind = body[0];
  const id = body.readUInt32BE(1);
  const fixed = (name: string): number => {
    if (body.length !== PAIR_HEADER + 4) throw new FrameError(`${name} body must be ${PAIR_HEADER + 4} bytes`);
    return body.readUInt32BE(PAIR_HEADER);
  };
  switch (kind) {
    case PairKind.OPEN:
      return { kind, id, window: fixed("OPEN") };
    case PairKind.DATA:
      if (body.length < PAIR_HEADER + 4) throw new FrameError("DATA body shorter than its header");
      if (body.length > PAIR_HEADER + 4 + MAX_DATA) throw new FrameError(`DATA payload exceeds ${MAX_DATA} bytes`);
      return { kind, id, offset: body.readUInt32BE(PAIR_HEADER), data: body.subarray(PAIR_HEADER + 4) };
    case PairKind.CREDIT:
      return { kind, id, bytes: fixed("CREDIT") };
    case PairKind.FIN:
      return { kind, id, offset: fixed("FIN") };
    case PairKind.RST:
      if (body.length > PAIR_HEADER + MAX_RST_REASON) throw new FrameError(`RST reason exceeds ${MAX_RST_REASON} bytes`);
      return { kind, id, reason: body.toString("utf8", PAIR_HEADER) };
    default:
      throw new FrameError(`unknown pair body kind 0x${(kind ?? 0).toString(16).padStart(2, "0")}`);
  }
}

// ---- mesh frames ----

/** A complete FORWARD frame, built with one allocation. */
export function encodeForward(src: Uint8Array, dst: Uint8Array, body: Uint8Array): Buffer {
  checkKey(src, "source key");
  checkKey(dst, "destination key");
  if (body.length > MAX_BODY) throw new FrameError(`body of ${body.length} bytes exceeds ${MAX_BODY}`, CloseCode.TOO_BIG);
  const buf = Buffer.allocUnsafe(MESH_FORWARD_HEADER + body.length);
  buf[0] = MeshFrameType.FORWARD;
  buf.set(src, 1);
  buf.set(dst, 1 + KEY_LENGTH);
  buf.set(body, MESH_FORWARD_HEADER);
  return buf;
}

/** PRESENT or ABSENT frames for keys, MAX_PRESENCE_KEYS per frame (none for no keys). */
export function encodePresence(type: typeof MeshFrameType.PRESENT | typeof MeshFrameType.ABSENT, keys: readonly Uint8Array[]): Buffer[] {
  const frames: Buffer[] = [];
  for (let i = 0; i < keys.length; i += MAX_PRESENCE_KEYS) {
    const chunk = keys.slice(i, i + MAX_PRESENCE_KEYS);
    const buf = Buffer.allocUnsafe(1 + chunk.length * KEY_LENGTH);
    buf[0] = type;
    chunk.forEach((k, j) => {
      checkKey(k, "key");
      buf.set(k, 1 + j * KEY_LENGTH);
    });
    frames.push(buf);
  }
  return frames;
}

export type MeshFrame =
  | { type: typeof MeshFrameType.FORWARD; src: Buffer; dst: Buffer; body: Buffer }
  | { type: typeof MeshFrameType.PRESENT; keys: Buffer[] }
  | { type: typeof MeshFrameType.ABSENT; keys: Buffer[] }
  | { type: typeof FrameType.PING; payload: Buffer }
  | { type: typeof FrameType.PONG; payload: Buffer };

/**
 * Parses one mesh frame (keys and body are views into buf). Throws FrameError (with the close code
 * to use) on anything malformed. RelayMesh checks its hot path inline; this is the reference.
 */
export function decodeMeshFrame(buf: Buffer): MeshFrame {
  if (buf.length === 0) throw new FrameError("empty frame");
  if (buf.length > MAX_MESH_FRAME) throw new FrameError(`frame of ${buf.length} bytes exceeds ${MAX_MESH_FRAME}`, CloseCode.TOO_BIG);
  const type = buf[0];
  switch (type) {
    case MeshFrameType.FORWARD:
      if (buf.length < MESH_FORWARD_HEADER) throw new FrameError(`FORWARD frame shorter than its ${MESH_FORWARD_HEADER}-byte header`);
      if (buf.length > MESH_FORWARD_HEADER + MAX_BODY) throw new FrameError(`FORWARD body exceeds ${MAX_BODY} bytes`, CloseCode.TOO_BIG);
      return {
        type,
        src: buf.subarray(1, 1 + KEY_LENGTH),
        dst: buf.subarray(1 + KEY_LENGTH, MESH_FORWARD_HEADER),
        body: buf.subarray(MESH_FORWARD_HEADER),
      };
    case MeshFrameType.PRESENT:
    case MeshFrameType.ABSENT: {
      const n = presenceCount(buf);
      const keys: Buffer[] = [];
      for (let i = 0; i < n; i++) keys.push(buf.subarray(1 + i * KEY_LENGTH, 1 + (i + 1) * KEY_LENGTH));
      return { type, keys };
    }
    case FrameType.PING:
    case FrameType.PONG:
      if (buf.length > 1 + MAX_PING_PAYLOAD) throw new FrameError(`PING/PONG payload exceeds ${MAX_PING_PAYLOAD} bytes`);
      return { type, payload: buf.subarray(1) };
    default:
      throw new FrameError(`unknown mesh frame type 0x${(type ?? 0).toString(16).padStart(2, "0")}`);
  }
}

/** The number of keys in a PRESENT/ABSENT frame; throws FrameError when its size is wrong. */
export function presenceCount(buf: Buffer): number {
  const n = (buf.length - 1) / KEY_LENGTH;
  if (!Number.isInteger(n) || n < 1 || n > MAX_PRESENCE_KEYS) {
    throw new FrameError(`PRESENT/ABSENT frame of ${buf.length} bytes is not 1 + n × ${KEY_LENGTH} with 1 ≤ n ≤ ${MAX_PRESENCE_KEYS}`);
  }
  return n;
}
