import { describe, expect, it } from "vitest";
import { embeddedRegion, relayNodeUrl } from "./relay-map.js";

describe("relay map", () => {
  it("places the embedded relay at the access URL", () => {
    const r = embeddedRegion("http://127.0.0.1:3000", 999, "coder", "Coder Embedded Relay");
    expect(r.RegionID).toBe(999);
    expect(relayNodeUrl(r.Nodes[0]!)).toBe("ws://127.0.0.1:3000/derp");
    expect(relayNodeUrl(embeddedRegion("https://coder.example.com", 999, "coder", "x").Nodes[0]!)).toBe("wss://coder.example.com:443/derp");
  });
});
