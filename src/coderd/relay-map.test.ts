import { describe, expect, it } from "vitest";
import { relayNodeUrl } from "../tailnet/index.js";
import { parseRelayMap } from "./relay-map.js";

const seedMap = `{
  "Regions": {
    "1": {
      "RegionID": 1,
      "RegionCode": "myderp",
      "RegionName": "My DERP",
      "Nodes": [{ "Name": "1", "RegionID": 1, "HostName": "your-hostname.com" }]
    }
  }
}`;

describe("relay map files", () => {
  it("reads the map of the networking guide", () => {
    const m = parseRelayMap(seedMap, "derpmap.json");
    expect(m.Regions["1"]!.Nodes[0]!.HostName).toBe("your-hostname.com");
    expect(relayNodeUrl(m.Regions["1"]!.Nodes[0]!)).toBe("wss://your-hostname.com:443/derp");
  });

  it("names what is wrong", () => {
    expect(() => parseRelayMap("{", "x.json")).toThrow(/x.json is not JSON/);
    expect(() => parseRelayMap(`{"Regions":{"2":{"RegionID":3,"RegionCode":"a","RegionName":"A","Nodes":[{"Name":"n","RegionID":3,"HostName":"h"}]}}}`, "x.json")).toThrow(
      /Regions.2.RegionID: region "2" has RegionID 3/,
    );
    expect(() => parseRelayMap(`{"Regions":{"2":{"RegionID":2,"RegionCode":"a","RegionName":"A","Nodes":[]}}}`, "x.json")).toThrow(/Regions.2.Nodes/);
  });
});
