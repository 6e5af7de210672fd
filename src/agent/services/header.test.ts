import { describe, expect, it } from "vitest";
import { parseStreamHeader } from "./header.js";

describe("parseStreamHeader", () => {
  it("accepts each service's header", () => {
    expect(parseStreamHeader({ service: "ssh" })).toEqual({ service: "ssh" });
    const pty = { service: "pty", id: "0f8e6b1c-7d2a-4b7e-9c1d-2f3a4b5c6d7e", width: 80, height: 24, command: "top" };
    expect(parseStreamHeader(pty)).toEqual(pty);
    expect(parseStreamHeader({ service: "pty", id: "a", width: 1, height: 1000 })).toEqual({ service: "pty", id: "a", width: 1, height: 1000 });
    expect(parseStreamHeader({ service: "speedtest", direction: "up", duration_ms: 100 })).toMatchObject({ direction: "up" });
    expect(parseStreamHeader({ service: "speedtest", direction: "down", duration_ms: 60_000 })).toMatchObject({ direction: "down" });
    expect(parseStreamHeader({ service: "tcp", port: 65_535 })).toEqual({ service: "tcp", port: 65_535 });
  });

  it("drops fields it does not know", () => {
    expect(parseStreamHeader({ service: "ssh", extra: 1 })).toEqual({ service: "ssh" });
  });

  it.each([
    [null, /header/],
    ["ssh", /header/],
    [[], /header/],
    [{}, /service/],
    [{ service: "telnet" }, /service/],
    [{ service: 1 }, /service/],
    [{ service: "pty", width: 80, height: 24 }, /id/],
    [{ service: "pty", id: "", width: 80, height: 24 }, /id/],
    [{ service: "pty", id: "a".repeat(65), width: 80, height: 24 }, /id/],
    [{ service: "pty", id: "../../etc", width: 80, height: 24 }, /id/],
    [{ service: "pty", id: "a", width: 0, height: 24 }, /width/],
    [{ service: "pty", id: "a", width: 80.5, height: 24 }, /width/],
    [{ service: "pty", id: "a", width: "80", height: 24 }, /width/],
    [{ service: "pty", id: "a", width: 80, height: 1001 }, /height/],
    [{ service: "pty", id: "a", width: 80, height: 24, command: "x".repeat(4097) }, /command/],
    [{ service: "pty", id: "a", width: 80, height: 24, command: 5 }, /command/],
    [{ service: "speedtest", direction: "sideways", duration_ms: 1000 }, /direction/],
    [{ service: "speedtest", direction: "up", duration_ms: 99 }, /duration_ms/],
    [{ service: "speedtest", direction: "up", duration_ms: 60_001 }, /duration_ms/],
    [{ service: "tcp", port: 0 }, /port/],
    [{ service: "tcp", port: 65_536 }, /port/],
    [{ service: "tcp", port: "22" }, /port/],
  ])("rejects %j naming the field", (header, field) => {
    expect(() => parseStreamHeader(header)).toThrow(new RegExp(`^invalid stream header: ${field.source}:`));
  });
});
