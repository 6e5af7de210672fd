// The relay map ("DERP map"): regions of relays, each with nodes, in the JSON shape operators know
// from Tailscale and Coder (`Regions` → `Nodes`), so a map written for those works here. The
// server validates maps it loads (coderd's relay-map.ts); peers only read the map it serves.
/** A relay node: where its /derp is reached. */
export interface RelayNode {
  Name: string;
  RegionID: number;
  HostName: string;
  DERPPort?: number;
  ForceHTTP?: boolean;
  STUNPort?: number;
}

export interface RelayRegion {
  RegionID: number;
  RegionCode: string;
  RegionName: string;
  Nodes: RelayNode[];
  /** Ours: the relay this region embeds in coder server (served at /derp of the access URL). */
  EmbeddedRelay?: boolean;
}

export interface RelayMap {
  Regions: Record<string, RelayRegion>;
  OmitDefaultRegions?: boolean;
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
