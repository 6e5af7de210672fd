import { describe, expect, it } from "vitest";
import { AGENT_PING_INTERVAL_MS, agentStatus } from "./status.js";

const t0 = new Date("2026-01-01T00:00:00Z");
const at = (ms: number) => new Date(t0.getTime() + ms);
const base = { created_at: t0, connection_timeout_seconds: 120, first_connected_at: null, last_connected_at: null, disconnected_at: null };

describe("agentStatus", () => {
  it("is connecting until the first connection, then times out", () => {
    expect(agentStatus(base, at(1000).getTime())).toBe("connecting");
    expect(agentStatus(base, at(121_000).getTime())).toBe("timeout");
    expect(agentStatus({ ...base, connection_timeout_seconds: 0 }, at(10_000_000).getTime())).toBe("connecting");
  });

  it("is connected while pings arrive, disconnected after a clean close or three missed pings", () => {
    const connected = { ...base, first_connected_at: at(1000), last_connected_at: at(5000) };
    expect(agentStatus(connected, at(6000).getTime())).toBe("connected");
    expect(agentStatus(connected, at(5000 + 3 * AGENT_PING_INTERVAL_MS + 1).getTime())).toBe("disconnected");
    expect(agentStatus({ ...connected, disconnected_at: at(5500) }, at(6000).getTime())).toBe("disconnected");
    // Reconnected after a disconnect.
    expect(agentStatus({ ...connected, disconnected_at: at(4000) }, at(6000).getTime())).toBe("connected");
  });
});
