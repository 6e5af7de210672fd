import { describe, expect, it } from "vitest";
import { relayLatencyChanged } from "./protocol.js";

describe("relayLatencyChanged: whether the agent sends its node again", () => {
  it("not for noise: small moves, or moves within 20% or within 1 ms", () => {
    expect(relayLatencyChanged({ "999": 2 }, { "999": 2 })).toBe(false);
    expect(relayLatencyChanged({ "999": 2 }, { "999": 2.9 })).toBe(false); // +45% but under 1 ms
    expect(relayLatencyChanged({ "999": 50 }, { "999": 58 })).toBe(false); // +8 ms but 16%
    expect(relayLatencyChanged({ "999": 50, "1": 100 }, { "1": 110, "999": 45 })).toBe(false);
  });

  it("when a latency moved by more than 20% and more than 1 ms, either way", () => {
    expect(relayLatencyChanged({ "999": 2 }, { "999": 3.5 })).toBe(true);
    expect(relayLatencyChanged({ "999": 50 }, { "999": 61 })).toBe(true);
    expect(relayLatencyChanged({ "999": 50 }, { "999": 39 })).toBe(true);
    expect(relayLatencyChanged({ "999": 50, "1": 100 }, { "999": 50, "1": 130 })).toBe(true);
  });

  it("when a region appeared or went away (its check started or stopped failing)", () => {
    expect(relayLatencyChanged({ "999": 2 }, { "999": 2, "1": 40 })).toBe(true);
    expect(relayLatencyChanged({ "999": 2, "1": 40 }, { "999": 2 })).toBe(true);
    expect(relayLatencyChanged({ "999": 2 }, { "1": 2 })).toBe(true);
    expect(relayLatencyChanged({ "999": 2 }, {})).toBe(true);
    expect(relayLatencyChanged(undefined, { "999": 2 })).toBe(true);
    expect(relayLatencyChanged(undefined, {})).toBe(false);
  });
});
