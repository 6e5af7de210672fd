import { describe, expect, it } from "vitest";
import { appHost, matchAppHost, parseAppLabel, parseWildcardAccessUrl } from "./hosts.js";
import { downstreamHeaders, stripCredentialCookies, upstreamHeaders } from "./proxy.js";

describe("wildcard access URL", () => {
  it("parses host patterns, with or without a port or scheme", () => {
    expect(parseWildcardAccessUrl("")).toBeUndefined();
    expect(parseWildcardAccessUrl("*.Apps.Example.com")).toEqual({ suffix: ".apps.example.com", port: undefined, pattern: "*.apps.example.com" });
    expect(parseWildcardAccessUrl("https://*.apps.127.0.0.1.nip.io:3000/")).toEqual({ suffix: ".apps.127.0.0.1.nip.io", port: "3000", pattern: "*.apps.127.0.0.1.nip.io:3000" });
    for (const bad of ["apps.example.com", "*", "*.com.", "x.*.example.com", "*.example.com:99999", "*example", "*.a..b"]) {
      expect(() => parseWildcardAccessUrl(bad), bad).toThrow();
    }
  });

  it("matches only single labels under the suffix, on the pattern's port", () => {
    const w = parseWildcardAccessUrl("*.apps.example.com")!;
    expect(matchAppHost(w, "web--main--dev--alice.apps.example.com")).toBe("web--main--dev--alice");
    expect(matchAppHost(w, "WEB--main--dev--alice.apps.example.com:8443")).toBe("web--main--dev--alice");
    expect(matchAppHost(w, "apps.example.com")).toBeUndefined();
    expect(matchAppHost(w, "a.b.apps.example.com")).toBeUndefined();
    expect(matchAppHost(w, "x.example.com")).toBeUndefined();
    expect(matchAppHost(w, undefined)).toBeUndefined();
    const p = parseWildcardAccessUrl("*.apps.test:3000")!;
    expect(matchAppHost(p, "a--b--c--d.apps.test:3000")).toBe("a--b--c--d");
    expect(matchAppHost(p, "a--b--c--d.apps.test")).toBeUndefined();
  });

  it("splits app labels; agent names may hold double hyphens", () => {
    expect(parseAppLabel("web--main--dev--alice")).toEqual({ slug: "web", agent: "main", workspace: "dev", username: "alice" });
    expect(parseAppLabel("web--my--agent--dev--alice")).toEqual({ slug: "web", agent: "my--agent", workspace: "dev", username: "alice" });
    expect(parseAppLabel("web--dev--alice")).toBeUndefined();
    expect(parseAppLabel("web----dev--alice")).toBeUndefined();
    const w = parseWildcardAccessUrl("*.apps.test:3000")!;
    expect(appHost(w, { slug: "web", agent: "main", workspace: "Dev", username: "alice" })).toBe("web--main--dev--alice.apps.test:3000");
  });
});

describe("proxy headers", () => {
  it("never passes Coder's credentials to an app", () => {
    expect(stripCredentialCookies("a=1; coder_session_token=x; coder_subdomain_app_session_token=y; b=2")).toBe("a=1; b=2");
    expect(stripCredentialCookies("coder_session_token=x")).toBeUndefined();
    const h = upstreamHeaders(
      { host: "coder.test", "coder-session-token": "secret", cookie: "coder_session_token=x; k=v", connection: "keep-alive, x-private", "x-private": "1", "keep-alive": "5", accept: "*/*" },
      { path: "/", host: "localhost", port: 8080, https: false },
      { for: "10.0.0.9", proto: "https", host: "coder.test", prefix: "/@a/b/apps/c" },
      false,
    );
    expect(h).toEqual({
      accept: "*/*",
      cookie: "k=v",
      host: "localhost:8080",
      connection: "close",
      "x-forwarded-for": "10.0.0.9",
      "x-forwarded-proto": "https",
      "x-forwarded-host": "coder.test",
      "x-forwarded-prefix": "/@a/b/apps/c",
    });
  });

  it("keeps an app from setting Coder's cookies", () => {
    const raw = ["Set-Cookie", "coder_session_token=planted; Path=/", "Set-Cookie", "Coder_Subdomain_App_Session_Token=x", "Set-Cookie", "ok=1", "Transfer-Encoding", "chunked", "Content-Type", "text/plain"];
    expect(downstreamHeaders(raw, false)).toEqual(["Set-Cookie", "ok=1", "Content-Type", "text/plain"]);
    expect(downstreamHeaders(["Connection", "Upgrade", "Upgrade", "websocket"], true)).toEqual(["Connection", "Upgrade", "Upgrade", "websocket"]);
  });
});
