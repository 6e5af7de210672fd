// The relay map ("DERP map"): regions of relays, each with nodes, in the JSON shape operators know
// from Tailscale and Coder (`Regions` → `Nodes`), so a map written for those works here.
import { z } from "zod";

const nodeSchema = z.object({
  Name: z.string().min(1).max(64),
  RegionID: z.number().int().min(1).max(65535),
  HostName: z.string().min(1).max(253),
  DERPPort: z.number().int().min(0).max(65535).optional(),
  ForceHTTP: z.boolean().optional(),
  STUNPort: z.number().int().min(-1).max(65535).optional(),
});

const regionSchema = z.object({
  RegionID: z.number().int().min(1).max(65535),
  RegionCode: z.string().min(1).max(64),
  RegionName: z.string().min(1).max(128),
  Nodes: z.array(nodeSchema).min(1).max(64),
  /** Ours: the relay this region embeds in coder server (served at /derp of the access URL). */
  EmbeddedRelay: z.boolean().optional(),
});

export const relayMapSchema = z.object({
  Regions: z.record(z.string().regex(/^\d+$/, "region keys are region IDs"), regionSchema).superRefine((regions, ctx) => {
    for (const [id, r] of Object.entries(regions)) {
      if (Number(id) !== r.RegionID) ctx.addIssue({ code: "custom", path: [id, "RegionID"], message: `region "${id}" has RegionID ${r.RegionID}` });
      r.Nodes.forEach((n, i) => {
        if (n.RegionID !== r.RegionID) ctx.addIssue({ code: "custom", path: [id, "Nodes", i, "RegionID"], message: `node "${n.Name}" is in region ${r.RegionID} but says ${n.RegionID}` });
      });
    }
  }),
  OmitDefaultRegions: z.boolean().optional(),
});

export type RelayMap = z.infer<typeof relayMapSchema>;
export type RelayRegion = z.infer<typeof regionSchema>;
export type RelayNode = z.infer<typeof nodeSchema>;

/** Parses and validates a map; errors name the offending path. */
export function parseRelayMap(text: string, source: string): RelayMap {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`relay map ${source} is not JSON: ${(err as Error).message}`);
  }
  const r = relayMapSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new Error(`relay map ${source}: ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  return r.data;
}

/** The region of the relay embedded in coder server, reached at the access URL. */
export function embeddedRegion(accessUrl: string, id: number, code: string, name: string): RelayRegion {
  const u = new URL(accessUrl);
  const https = u.protocol === "https:";
  return {
    RegionID: id,
    RegionCode: code,
    RegionName: name,
    EmbeddedRelay: true,
    Nodes: [{ Name: `${id}a`, RegionID: id, HostName: u.hostname.replace(/^\[|\]$/g, ""), DERPPort: Number(u.port) || (https ? 443 : 80), ForceHTTP: !https }],
  };
}

/** The WebSocket URL of a relay node. */
export function relayNodeUrl(node: RelayNode): string {
  const scheme = node.ForceHTTP ? "ws" : "wss";
  const port = node.DERPPort || (node.ForceHTTP ? 80 : 443);
  const host = node.HostName.includes(":") ? `[${node.HostName}]` : node.HostName;
  return `${scheme}://${host}:${port}/derp`;
}
