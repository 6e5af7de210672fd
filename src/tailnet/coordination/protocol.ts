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

/** A peer as it describes itself: its public key, its home relay region, its direct endpoints. */
export const nodeSchema = z.object({
  key: z.string().regex(/^[A-Za-z0-9_-]{43}$/, "must be a base64url ed25519 public key"),
  preferred_relay: z.number().int().min(0).max(65535),
  endpoints: z.array(endpoint).max(32),
});
export type Node = z.infer<typeof nodeSchema>;

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
