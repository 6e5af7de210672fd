// The shared UDX instance, stream ids, and the two datagrams of the stream-id handshake.
//
// A UDX stream needs both ends' stream ids before it can carry bytes, and neither end knows the
// other's in advance, so a client and a listener swap them over raw datagrams first:
//
//   client -> listener  HELLO  magic "CODERUDX1" | 0x01 | client stream id (u32 BE) | 4 zero bytes
//   listener -> client  OK     magic "CODERUDX1" | 0x02 | client stream id (u32 BE) | listener stream id (u32 BE)
//
// Both are 18 bytes, so a spoofed HELLO cannot make the listener send more than it received. This
// is plumbing, not security: whoever completes it still has to pass the Noise handshake of the
// Session on top (the key pinned by the coordinator on the client, `allow` on the agent). The
// magic starts with 'C', never UDX's packet magic 0xff, so libudx hands these to 'message'.
import { createRequire } from "node:module";
import { isIP } from "node:net";
import type UDX from "udx-native";

export type UdxStream = UDX.UDXStream;
export type UdxSocket = UDX.UDXSocket;

const MAGIC = Buffer.from("CODERUDX1", "latin1");
export const DATAGRAM_BYTES = MAGIC.length + 1 + 4 + 4;
const TYPE_HELLO = 1;
const TYPE_OK = 2;

let shared: UDX | undefined;

/**
 * One UDX instance per process: stream ids are unique per instance, so everyone shares it. The
 * native addon loads on first use, not with this module: `coder ssh --stdio` starts on the relay
 * and tries UDP only afterwards, so its start-up does not wait for it.
 */
export function udx(): UDX {
  shared ??= new (createRequire(import.meta.url)("udx-native") as typeof UDX)();
  return shared;
}

const liveIds = new Set<number>();
let nextId = (Math.random() * 0xffff_fff0) >>> 0;

/** A stream with an id no other live stream of this process has; the id is freed when it closes. */
export function createStream(): UdxStream {
  let id: number;
  do {
    nextId = (nextId + 1) >>> 0;
    id = nextId;
  } while (id === 0 || liveIds.has(id));
  liveIds.add(id);
  const stream = udx().createStream(id);
  stream.once("close", () => liveIds.delete(id));
  // streamx emits 'error' on destroy(err); whoever uses the stream adds its own listener, this one
  // only keeps an error nobody listens for from being thrown.
  stream.on("error", () => {});
  return stream;
}

function encode(type: number, a: number, b: number): Buffer {
  const buf = Buffer.alloc(DATAGRAM_BYTES);
  MAGIC.copy(buf, 0);
  buf[MAGIC.length] = type;
  buf.writeUInt32BE(a, MAGIC.length + 1);
  buf.writeUInt32BE(b, MAGIC.length + 5);
  return buf;
}

function decode(buf: Buffer, type: number): [number, number] | undefined {
  if (buf.length !== DATAGRAM_BYTES || buf[MAGIC.length] !== type) return undefined;
  if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const a = buf.readUInt32BE(MAGIC.length + 1);
  const b = buf.readUInt32BE(MAGIC.length + 5);
  return a === 0 ? undefined : [a, b];
}

export const encodeHello = (clientId: number): Buffer => encode(TYPE_HELLO, clientId, 0);
export const encodeOk = (clientId: number, listenerId: number): Buffer => encode(TYPE_OK, clientId, listenerId);

/** The client's stream id, or undefined when the datagram is not a well-formed HELLO. */
export function decodeHello(buf: Buffer): number | undefined {
  const d = decode(buf, TYPE_HELLO);
  return d && d[1] === 0 ? d[0] : undefined;
}

/** [client stream id, listener stream id], or undefined when the datagram is not a well-formed OK. */
export function decodeOk(buf: Buffer): [number, number] | undefined {
  const d = decode(buf, TYPE_OK);
  return d && d[1] !== 0 ? d : undefined;
}

/** "udp:1.2.3.4:5" or "udp:[::1]:5" → host and port; throws on anything else. */
export function parseUdpEndpoint(endpoint: string): { host: string; port: number } {
  const m = /^udp:(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\]):(\d{1,5})$/.exec(endpoint);
  const host = m?.[1]?.replace(/^\[|\]$/g, "");
  const port = Number(m?.[2]);
  if (!host || !isIP(host) || !(port > 0 && port < 65536)) throw new Error(`not a udp endpoint: ${JSON.stringify(endpoint)}`);
  return { host, port };
}
