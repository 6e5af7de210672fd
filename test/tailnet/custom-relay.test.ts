// A deployment that runs no relay of its own (--derp-server-enable=false) and uses the relays of
// a custom map instead: here, the embedded relay of another coder server.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { Client, Workspace } from "../../src/codersdk/index.js";
import { runCli } from "../helpers/binary.js";
import { createFirstUser, startTestServer, type TestServer } from "../helpers/coderd.js";
import { deleteWorkspace, loggedInConfigDir, removeDir, runningWorkspace } from "../helpers/workspaces.js";

let relayHost: TestServer;
let srv: TestServer;
let owner: Client;
let workspace: Workspace;
let cfg: string;

beforeAll(async () => {
  relayHost = await startTestServer({ manualClose: true });
  const relayPort = Number(new URL(relayHost.url).port);
  srv = await startTestServer({
    provisionerDaemons: 1,
    manualClose: true,
    relay: {
      embedded: false,
      custom: { Regions: { "7": { RegionID: 7, RegionCode: "other", RegionName: "Other relay", Nodes: [{ Name: "7a", RegionID: 7, HostName: "127.0.0.1", DERPPort: relayPort, ForceHTTP: true }] } } },
    },
  });
  ({ client: owner } = await createFirstUser(srv));
  ({ workspace } = await runningWorkspace(owner, "far"));
  cfg = loggedInConfigDir(owner);
});

afterAll(async () => {
  if (workspace) await deleteWorkspace(owner, workspace);
  await srv?.close();
  await relayHost?.close();
  removeDir(cfg);
});

describe("a custom relay map without the embedded relay", () => {
  it("serves only the custom regions, and no /derp of its own", async () => {
    const map = await owner.request<{ Regions: Record<string, { RegionID: number }> }>("GET", "/api/v2/derp-map");
    expect(Object.keys(map.Regions)).toEqual(["7"]);
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${srv.url.replace("http", "ws")}/derp`);
      ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      ws.on("open", () => resolve(101));
      ws.on("error", () => {});
    });
    expect(status).toBe(404);
  });

  it("relays sessions through the other server's relay", async () => {
    const before = relayHost.coderd.relayServer!.stats().bytes_forwarded;
    const r = await runCli(["--config-dir", cfg, "ssh", "far", "--", "echo", "via-other-relay"], { CODER_BLOCK_DIRECT: "1" }, 60_000);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("via-other-relay\n");
    expect(relayHost.coderd.relayServer!.stats().bytes_forwarded).toBeGreaterThan(before);
  });
});
