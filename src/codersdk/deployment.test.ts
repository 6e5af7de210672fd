import { describe, expect, it } from "vitest";
import { parseBytes, resolveDeploymentValues } from "./deployment.js";
import { formatDuration, parseDuration } from "./duration.js";

describe("resolveDeploymentValues", () => {
  it("uses defaults, then the environment, then flags", () => {
    const d = resolveDeploymentValues({}, {});
    expect(d.errors).toEqual([]);
    expect(d.values.httpAddress).toBe("127.0.0.1:3000");
    expect(d.values.sessionDurationMs).toBe(24 * 3600_000);
    const env = resolveDeploymentValues({}, { CODER_HTTP_ADDRESS: "0.0.0.0:8080", CODER_VERBOSE: "true" });
    expect(env.values.httpAddress).toBe("0.0.0.0:8080");
    expect(env.values.verbose).toBe(true);
    const flag = resolveDeploymentValues({ "http-address": "127.0.0.1:9" }, { CODER_HTTP_ADDRESS: "0.0.0.0:8080" });
    expect(flag.values.httpAddress).toBe("127.0.0.1:9");
  });

  it("names the flag and the variable in every error", () => {
    const { errors } = resolveDeploymentValues(
      { "access-url": "nope" },
      { CODER_HTTP_ADDRESS: "localhost", CODER_SESSION_DURATION: "1 fortnight", CODER_VERBOSE: "maybe", CODER_MAX_REQUEST_BODY: "huge" },
    );
    expect(errors.map((e) => e.message.split(":")[0])).toEqual([
      "--http-address / CODER_HTTP_ADDRESS",
      "--access-url / CODER_ACCESS_URL",
      "--verbose / CODER_VERBOSE",
      "--session-duration / CODER_SESSION_DURATION",
      "--max-request-body / CODER_MAX_REQUEST_BODY",
    ]);
  });

  it("gives a bare --log-json the value standard error", () => {
    expect(resolveDeploymentValues({ "log-json": true }, {}).values.logJson).toBe("/dev/stderr");
  });
});

describe("durations and sizes", () => {
  it.each([
    ["24h", 86_400_000],
    ["1h30m", 5_400_000],
    ["7d", 604_800_000],
    ["500ms", 500],
    ["1.5s", 1500],
  ])("parses %s", (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(["", "24", "h", "1x", "1h-", "-1h"])("rejects %j", (text) => expect(parseDuration(text)).toBeUndefined());

  it("formats in the largest whole unit", () => {
    expect(formatDuration(720 * 3600_000)).toBe("30d");
    expect(formatDuration(90_000)).toBe("90s");
  });

  it("parses sizes", () => {
    expect(parseBytes("1MiB")).toBe(1_048_576);
    expect(parseBytes("512kb")).toBe(512_000);
    expect(parseBytes("12 parsecs")).toBeUndefined();
  });
});
