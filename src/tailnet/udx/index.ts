// UDP direct paths: UDX streams (reliable, congestion-controlled, over UDP) set up by a tiny
// stream-id handshake; a Session runs on top of them exactly as over TCP.
export { UdxListener, type UdxListenerOptions, type UdxListenerStats, type UdxRemote } from "./listener.js";
export { dialUdx, type DialUdxOptions } from "./dial.js";
export type { UdxStream } from "./wire.js";
