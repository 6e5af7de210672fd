// What peers and the coordinator say to each other over the coordinate WebSocket (JSON text
// frames; they are small and rare: a peer's node changes when it connects, moves relay or finds
// new direct endpoints).
import { z } from "zod";

/** The relay region the embedded relay of every coder server belongs to. */
export const EMBEDDED_RELAY_REGION = 999;

const endpoint = z
  .string()
  .max(64)
  .regex(/^(tcp|udp):(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):\d{1,5}$/, 'must be "tcp:<ip>:<port>" or "udp:<ip>:<port>"');

/** At most this many regions in a node's relay latencies (a relay map has a handful). */
export const MAX_RELAY_LATENCIES = 64;
/** Latencies above this (ms) are not measurements: a check gives up long before. */
export const MAX_RELAY_LATENCY_MS = 60_000;

/**
 * Region id → the round trip of the region's /derp/latency-check, in milliseconds. Regions whose
 * check failed are left out.
 */
const relayLatencyMs = z
  .record(z.string(), z.number().nonnegative().max(MAX_RELAY_LATENCY_MS))
  .superRefine((r, ctx) => {
    const keys = Object.keys(r);
    if (keys.length > MAX_RELAY_LATENCIES) ctx.addIssue({ code: "custom", message: `at most ${MAX_RELAY_LATENCIES} regions` });
    for (const k of keys.slice(0, MAX_RELAY_LATENCIES + 1)) {
      if (!/^[1-9]\d{0,4}$/.test(k) || Number(k) > 65535) ctx.addIssue({ code: "custom", path: [k], message: "keys must be region IDs (1-65535)" });
    }
  });

/**
 * A peer as it describes itself: its public key, its home relay region, its direct endpoints and
 * (agents; optional, older peers send none) its latency to every relay region.
 */
export const nodeSchema = z.object({
  key: z.string().regex(/^[A-Za-z0-9_-]{43}$/, "must be a base64url ed25519 public key"),
  preferred_relay: z.number().int().min(0).max(65535),
  endpoints: z.array(endpoint).max(32),
  relay_latency_ms: relayLatencyMs.optional(),
});
export type Node = z.infer<typeof nodeSchema>;

/**
 * Whether new relay latencies differ enough from the ones last sent to send the node again: a
 * region appeared or went away, or a latency moved by more than 20% and more than 1 ms. Noise
 * below that is not worth a coordinator write and a message to every client.
 */
export function relayLatencyChanged(sent: Record<string, number> | undefined, now: Record<string, number>): boolean {
  const before = sent ?? {};
  const keys = Object.keys(now);
  if (keys.length !== Object.keys(before).length) return true;
  for (const k of keys) {
    const a = before[k];
    const b = now[k]!;
    if (a === undefined) return true;
    const d = Math.abs(b - a);
    if (d > 1 && d > 0.2 * a) return true;
  }
  return false;
}

/** Peer → coordinator. */
export const peerMessageSchema = z.object({ type: z.literal("node"), node: nodeSchema });
export type PeerMessage = z.infer<typeof peerMessageSchema>;

export interface PeerInfo {
  /** For an agent, the agent's id; for a client, its connection's id. */
  id: string;
  kind: "agent" | "client";
  node: Node;
}

/** Coordinator → peer. */
export type CoordinatorMessage =
  | { type: "peers"; peers: PeerInfo[] }
  | { type: "peer_gone"; id: string }
  | { type: "error"; message: string };
