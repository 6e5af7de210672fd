// What peers and the coordinator say to each other over the coordinate WebSocket (JSON text
// frames; they are small and rare: a peer's node changes when it connects, moves relay or finds
// new direct endpoints). Plain types: the coordinator validates what peers send (coderd's
// peer-message.ts), and peers (the CLI) load no schema library on their way to a session.

/** The relay region the embedded relay of every coder server belongs to. */
export const EMBEDDED_RELAY_REGION = 999;

/** At most this many regions in a node's relay latencies (a relay map has a handful). */
export const MAX_RELAY_LATENCIES = 64;
/** Latencies above this (ms) are not measurements: a check gives up long before. */
export const MAX_RELAY_LATENCY_MS = 60_000;

/**
 * A peer as it describes itself: its public key, its home relay region, its direct endpoints and
 * (agents; optional, older peers send none) its latency to every relay region.
 */
export interface Node {
  /** base64url of the ed25519 public key (43 characters). */
  key: string;
  /** Home relay region (0: none yet). */
  preferred_relay: number;
  /** "tcp:<ip>:<port>" or "udp:<ip>:<port>". */
  endpoints: string[];
  /** Region id → the round trip of the region's /derp/latency-check in ms; failed regions are left out. */
  relay_latency_ms?: Record<string, number>;
}

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

/** Peer → coordinator (validated by the coordinator in coderd). */
export interface PeerMessage {
  type: "node";
  node: Node;
}

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
