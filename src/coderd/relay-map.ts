// Relay maps the server loads (--derp-config-path, --derp-config-url): validated here, with
// errors that name the offending path, before any peer is told about them.
import { z } from "zod";
import type { RelayMap, RelayNode, RelayRegion } from "../tailnet/index.js";

const nodeSchema: z.ZodType<RelayNode> = z.object({
  Name: z.string().min(1).max(64),
  RegionID: z.number().int().min(1).max(65535),
  HostName: z.string().min(1).max(253),
  DERPPort: z.number().int().min(0).max(65535).optional(),
  ForceHTTP: z.boolean().optional(),
  STUNPort: z.number().int().min(-1).max(65535).optional(),
});

const regionSchema: z.ZodType<RelayRegion> = z.object({
  RegionID: z.number().int().min(1).max(65535),
  RegionCode: z.string().min(1).max(64),
  RegionName: z.string().min(1).max(128),
  Nodes: z.array(nodeSchema).min(1).max(64),
  /** Ours: the relay this region embeds in coder server (served at /derp of the access URL). */
  EmbeddedRelay: z.boolean().optional(),
});

const relayMapSchema: z.ZodType<RelayMap> = z.object({
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
