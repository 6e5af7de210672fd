import { describe, expect, it } from "vitest";
import { MAX_RELAY_LATENCIES } from "../../tailnet/index.js";
import { nodeSchema, peerMessageSchema } from "./peer-message.js";

const key = "A".repeat(43);
const node = (extra: object = {}) => ({ key, preferred_relay: 999, endpoints: ["tcp:127.0.0.1:4000"], ...extra });

/** The field path and message of the first problem, as the coordinator reports it. */
function problem(msg: unknown): string | undefined {
  const r = peerMessageSchema.safeParse(msg);
  if (r.success) return undefined;
  const issue = r.error.issues[0]!;
  return `${issue.path.join(".")}: ${issue.message}`;
}

describe("a node's relay latencies", () => {
  it("are optional: a node from a peer that measures none stays valid", () => {
    const parsed = nodeSchema.parse(node());
    expect(parsed.relay_latency_ms).toBeUndefined();
  });

  it("accept region ids with non-negative finite milliseconds, up to the limit", () => {
    expect(nodeSchema.parse(node({ relay_latency_ms: { "999": 1.234, "1": 0, "65535": 59_999 } })).relay_latency_ms).toEqual({ "999": 1.234, "1": 0, "65535": 59_999 });
    expect(nodeSchema.parse(node({ relay_latency_ms: {} })).relay_latency_ms).toEqual({});
    const many = Object.fromEntries(Array.from({ length: MAX_RELAY_LATENCIES }, (_, i) => [String(i + 1), i]));
    expect(nodeSchema.safeParse(node({ relay_latency_ms: many })).success).toBe(true);
  });

  it.each([
    ["a negative latency", { "999": -1 }, /^node\.relay_latency_ms\.999: /],
    ["a latency that is not a number", { "999": "12" }, /^node\.relay_latency_ms\.999: /],
    ["null (what JSON makes of Infinity and NaN)", { "999": null }, /^node\.relay_latency_ms\.999: /],
    ["an absurd latency", { "999": 1e9 }, /^node\.relay_latency_ms\.999: /],
    ["a key that is not a region id", { eu: 3 }, /^node\.relay_latency_ms\.eu: keys must be region IDs/],
    ["region 0", { "0": 3 }, /^node\.relay_latency_ms\.0: keys must be region IDs/],
    ["a region id beyond 65535", { "70000": 3 }, /^node\.relay_latency_ms\.70000: keys must be region IDs/],
    ["a huge key", { ["9".repeat(5000)]: 3 }, /^node\.relay_latency_ms\.9+: keys must be region IDs/],
    ["too many regions", Object.fromEntries(Array.from({ length: MAX_RELAY_LATENCIES + 1 }, (_, i) => [String(i + 1), 1])), /^node\.relay_latency_ms: at most 64 regions/],
    ["a list instead of a map", [1, 2], /^node\.relay_latency_ms: /],
  ])("reject %s, naming the field", (_what, relay_latency_ms, expected) => {
    expect(problem({ type: "node", node: node({ relay_latency_ms }) })).toMatch(expected);
  });

  it("rejects non-finite numbers even without JSON in between", () => {
    for (const v of [Infinity, -Infinity, NaN]) expect(nodeSchema.safeParse(node({ relay_latency_ms: { "999": v } })).success).toBe(false);
  });
});
