// GET /api/v2/debug/health and `coder health` against a real server: healthy with a built-in
// daemon; database warning (EDB02) under a tiny latency threshold; provisioner error (EPD01)
// when a job waits and no daemon runs; owners only.
import { describe, expect, it } from "vitest";
import { packDirectory } from "../../src/archive/index.js";
import type { HealthReport } from "../../src/codersdk/index.js";
import { runCli, tempConfigDir } from "../helpers/binary.js";
import { createFirstUser, createUserWithRoles, startTestServer } from "../helpers/coderd.js";
import { writeTemplateDir } from "../helpers/templates.js";

const SECTIONS = ["access_url", "database", "derp", "websocket", "provisioner_daemons"] as const;

function codes(r: HealthReport): string[] {
  return SECTIONS.flatMap((s) => r.sections[s].warnings.map((w) => w.code));
}

describe("deployment health", () => {
  it("is ok on a healthy server with a built-in daemon; coder health prints it and exits 0", async () => {
    // A generous database threshold: this test is about a healthy server, not a fast disk.
    const srv = await startTestServer({ provisionerDaemons: 1, healthCheckThresholdDatabaseMs: 5_000 });
    const { client } = await createFirstUser(srv);
    const r = await client.debugHealth({ force: true });
    expect(codes(r), JSON.stringify(r, null, 2)).toEqual([]);
    expect(r).toMatchObject({ healthy: true, severity: "ok" });
    expect(Number.isNaN(Date.parse(r.time))).toBe(false);
    for (const s of SECTIONS) expect(r.sections[s], s).toMatchObject({ healthy: true, severity: "ok", warnings: [] });
    expect(r.sections.access_url).toMatchObject({ reachable: true, status_code: 200, healthz_response: "OK" });
    expect(r.sections.database.pings_ms).toHaveLength(5);
    expect(r.sections.database.threshold_ms).toBe(5_000);
    expect(Object.values(r.sections.derp.regions)).toEqual([expect.objectContaining({ region_id: 999, healthy: true, latency_ms: expect.any(Number) })]);
    expect(r.sections.websocket.latency_ms).toEqual(expect.any(Number));
    expect(r.sections.provisioner_daemons).toMatchObject({ connected: 1, pending_jobs: 0 });

    // Cached: a second request without force returns the same report.
    expect((await client.debugHealth()).time).toBe(r.time);
    const forced = await client.debugHealth({ force: true });
    expect(Date.parse(forced.time)).toBeGreaterThanOrEqual(Date.parse(r.time));

    const env = { CODER_URL: srv.url, CODER_SESSION_TOKEN: client.sessionToken!, CODER_CONFIG_DIR: tempConfigDir() };
    const table = await runCli(["health"], env);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/Deployment health: OK/);
    for (const label of ["Access URL", "Database", "Relay (DERP)", "WebSocket", "Provisioner daemons"]) expect(table.stdout).toContain(label);
    const json = await runCli(["health", "-o", "json"], env);
    expect(json.code, json.stderr).toBe(0);
    expect((JSON.parse(json.stdout) as HealthReport).severity).toBe("ok");
  });

  it("warns with EDB02 when the database latency is above the threshold", async () => {
    const srv = await startTestServer({ healthCheckThresholdDatabaseMs: 0.001 }); // 1 µs
    const { client } = await createFirstUser(srv);
    const r = await client.debugHealth({ force: true });
    expect(r.sections.database).toMatchObject({ healthy: true, severity: "warning", reachable: true, threshold_ms: 0.001 });
    expect(r.sections.database.warnings).toEqual([{ code: "EDB02", message: expect.stringContaining("CODER_HEALTH_CHECK_THRESHOLD_DATABASE") }]);
    expect(r.sections.database.latency_ms).toBeGreaterThan(0.001);
    expect(r.severity).toBe("warning");
    expect(r.healthy).toBe(true);
  });

  it("is in error with EPD01 when a job waits and no daemon is connected; coder health exits 1", async () => {
    const srv = await startTestServer({ provisionerDaemons: 0 });
    const { client, organizationId } = await createFirstUser(srv);
    const before = await client.debugHealth({ force: true });
    expect(before.sections.provisioner_daemons).toMatchObject({ severity: "ok", pending_jobs: 0, connected: 0 });
    expect(before.sections.database.threshold_ms).toBe(15); // Coder's default

    const { id: fileId } = await client.uploadFile(await packDirectory(writeTemplateDir()));
    await client.createTemplateVersion(organizationId, { file_id: fileId });
    const r = await client.debugHealth({ force: true });
    const pd = r.sections.provisioner_daemons;
    expect(pd).toMatchObject({ healthy: false, severity: "error", connected: 0, pending_jobs: 1 });
    expect(pd.warnings[0]).toEqual({ code: "EPD01", message: expect.stringContaining("coder provisioner start") });
    expect(pd.error).toEqual(expect.any(String));
    expect(r).toMatchObject({ healthy: false, severity: "error" });

    const env = { CODER_URL: srv.url, CODER_SESSION_TOKEN: client.sessionToken!, CODER_CONFIG_DIR: tempConfigDir() };
    const out = await runCli(["health"], env);
    expect(out.code).toBe(1);
    expect(out.stdout).toMatch(/Deployment health: ERROR/);
    expect(out.stdout).toMatch(/Provisioner daemons\s+ERROR/);
    expect(out.stdout).toContain("EPD01:");
  });

  it("is for owners only: anonymous 401, other roles 404, bad query 400", async () => {
    const srv = await startTestServer();
    const { client: owner } = await createFirstUser(srv);
    const anon = await fetch(`${srv.url}/api/v2/debug/health`);
    expect(anon.status).toBe(401);
    for (const role of ["member", "auditor", "template-admin", "user-admin"]) {
      const { client } = await createUserWithRoles(srv, owner, role.replace("-", ""), role === "member" ? [] : [role]);
      const res = await fetch(`${srv.url}/api/v2/debug/health`, { headers: { "Coder-Session-Token": client.sessionToken! } });
      expect(res.status, role).toBe(404);
      expect(((await res.json()) as { message: string }).message).toEqual(expect.any(String));
    }
    const bad = await fetch(`${srv.url}/api/v2/debug/health?force=maybe`, { headers: { "Coder-Session-Token": owner.sessionToken! } });
    expect(bad.status).toBe(400);
  });
});
