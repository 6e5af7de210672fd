import { describe, expect, it } from "vitest";
import { CliError } from "./errors.js";
import { listenAddress, MAX_RANGE, parsePortForwards } from "./port-spec.js";

const one = (bind: string, localPort: number, remotePort: number) => ({ bind, localPort, remotePort });

describe("parsePortForwards", () => {
  it("takes local:remote, a single port, and a bind address", () => {
    expect(parsePortForwards(["8080:80"])).toEqual([one("127.0.0.1", 8080, 80)]);
    expect(parsePortForwards(["3000"])).toEqual([one("127.0.0.1", 3000, 3000)]);
    expect(parsePortForwards(["0.0.0.0:8080:80"])).toEqual([one("0.0.0.0", 8080, 80)]);
    expect(parsePortForwards(["localhost:1:65535"])).toEqual([one("localhost", 1, 65535)]);
    expect(parsePortForwards(["[::1]:8080:80"])).toEqual([one("::1", 8080, 80)]);
    expect(parsePortForwards(["[::1]:8080"])).toEqual([one("::1", 8080, 8080)]);
    expect(parsePortForwards(["127.0.0.3:8080"])).toEqual([one("127.0.0.3", 8080, 8080)]);
  });

  it("expands equal ranges pairwise, and a range on its own to itself", () => {
    expect(parsePortForwards(["8000-8002:9000-9002"])).toEqual([one("127.0.0.1", 8000, 9000), one("127.0.0.1", 8001, 9001), one("127.0.0.1", 8002, 9002)]);
    expect(parsePortForwards(["127.0.0.2:5000-5001"])).toEqual([one("127.0.0.2", 5000, 5000), one("127.0.0.2", 5001, 5001)]);
    expect(parsePortForwards([`1-${MAX_RANGE}`])).toHaveLength(MAX_RANGE);
  });

  it("takes repeated flags and comma-separated lists, in order", () => {
    expect(parsePortForwards(["8080:80, 8443:443", "9000"])).toEqual([one("127.0.0.1", 8080, 80), one("127.0.0.1", 8443, 443), one("127.0.0.1", 9000, 9000)]);
    expect(parsePortForwards([])).toEqual([]);
  });

  it("allows the same local port on different bind addresses", () => {
    expect(parsePortForwards(["127.0.0.1:8080:80", "127.0.0.2:8080:81"])).toHaveLength(2);
  });

  it.each([
    ["", /--tcp "": empty spec/],
    ["8080:", /--tcp "8080:": remote port "" is not a port/],
    ["abc", /--tcp "abc": local port "abc" is not a port/],
    ["0:80", /local port 0 is out of range/],
    ["8080:70000", /remote port 70000 is out of range/],
    ["8080:-1", /remote port "-1" is not a port/],
    ["8005-8000:9000-9005", /local range 8005-8000 ends before it starts/],
    ["8000-8005:9000-9002", /the local side has 6 ports but the remote side has 3/],
    ["8080:9000-9001", /the local side has 1 port but the remote side has 2/],
    [`1-${MAX_RANGE + 1}`, new RegExp(`has ${MAX_RANGE + 1} ports \\(at most ${MAX_RANGE}\\)`)],
    ["nohost:8080:80", /"nohost" is not an IP address/],
    ["::1:8080:80", /too many colons/],
    ["[::1:8080:80", /bracketed address/],
    ["[1.2.3.4]:8080:80", /"1.2.3.4" is not an IPv6 address/],
    ["[::1]:8080:80:1", /after the address, give local:remote or a port/],
    ["8080:80,", /--tcp "8080:80,": empty spec/],
    [" 8080 : 80 ", /--tcp "8080 : 80": local port "8080 " is not a port/],
  ])("rejects %j with a message naming it", (spec, message) => {
    expect(() => parsePortForwards([spec])).toThrow(CliError);
    expect(() => parsePortForwards([spec])).toThrow(message);
    expect(() => parsePortForwards([spec])).toThrow(/use \[bind:\]local:remote|empty spec/);
  });

  it("rejects two forwards that would listen on the same address, naming both", () => {
    expect(() => parsePortForwards(["8080:80", "8079-8081:9000-9002"])).toThrow('--tcp "8079-8081:9000-9002": 127.0.0.1:8080 is already forwarded by --tcp "8080:80"');
  });

  it("names the flag it was given", () => {
    expect(() => parsePortForwards(["x"], "--udp")).toThrow(/^--udp "x"/);
  });
});

describe("listenAddress", () => {
  it("brackets IPv6", () => {
    expect(listenAddress({ bind: "::1", localPort: 80 })).toBe("[::1]:80");
    expect(listenAddress({ bind: "127.0.0.1", localPort: 80 })).toBe("127.0.0.1:80");
  });
});
