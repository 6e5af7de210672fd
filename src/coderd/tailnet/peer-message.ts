// What the coordinator accepts from a peer over the coordinate WebSocket: one node at a time,
// every field bounded, so a peer cannot store junk or oversized state for others to receive.
import { z } from "zod";
import { MAX_RELAY_LATENCIES, MAX_RELAY_LATENCY_MS, type Node, type PeerMessage } from "../../tailnet/index.js";

const endpoint = z
  .string()
  .max(64)
  .regex(/^(tcp|udp):(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):\d{1,5}$/, 'must be "tcp:<ip>:<port>" or "udp:<ip>:<port>"');

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

export const nodeSchema: z.ZodType<Node> = z.object({
  key: z.string().regex(/^[A-Za-z0-9_-]{43}$/, "must be a base64url ed25519 public key"),
  preferred_relay: z.number().int().min(0).max(65535),
  endpoints: z.array(endpoint).max(32),
  relay_latency_ms: relayLatencyMs.optional(),
});

export const peerMessageSchema: z.ZodType<PeerMessage> = z.object({ type: z.literal("node"), node: nodeSchema });
