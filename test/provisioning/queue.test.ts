// The job queue: tags route jobs to matching daemons only, every job runs exactly once however
// many daemons compete, a job nobody can take says why, and cancel works in every state.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { describe, expect, it, onTestFinished } from "vitest";
import { packDirectory } from "../../src/archive/index.js";
import { ProvisionerDaemon, WebSocketProvisionerdClient } from "../../src/provisionerd/index.js";
import { LocalDriver } from "../../src/provisioners/index.js";
import { createFirstUser, createUserWithRoles, startTestServer, type TestServer } from "../helpers/coderd.js";
import { waitForImport, writeTemplateDir } from "../helpers/templates.js";

const PSK = "queue-test-psk";

/** An external daemon (over the real WebSocket protocol) running in this process. */
async function daemon(srv: TestServer, name: string, tags: Record<string, string>): Promise<ProvisionerDaemon> {
  const cache = mkdtempSync(join(tmpdir(), "coder-daemon-"));
  const logger = pino({ level: "silent" });
  const client = new WebSocketProvisionerdClient({ url: srv.url, psk: PSK, identity: { name, organization: "default", tags, provisioners: ["local"], version: "test" }, logger });
  await client.connect();
  const d = new ProvisionerDaemon({
    client,
    drivers: { local: new LocalDriver({ workspacesDir: join(cache, "workspaces"), agentCommand: ["true"] }) },
    workDir: join(cache, "work"),
    logger,
    updateIntervalMs: 200,
  });
  d.start();
  onTestFinished(() => d.shutdown("cancel"));
  return d;
}

describe("provisioner job queue", () => {
  it("routes jobs by tags, and says why a job no daemon matches is waiting", async () => {
    const srv = await startTestServer({ provisionerDaemonPsk: PSK });
    const { client } = await createFirstUser(srv);
    await daemon(srv, "daemon-a", { env: "a" });
    await daemon(srv, "daemon-b", { env: "b", region: "eu" });
    const daemons = await client.provisionerDaemons("default");
    const idOf = (name: string) => daemons.find((d) => d.name === name)!.id;
    const { id: fileId } = await client.uploadFile(await packDirectory(writeTemplateDir()));

    const jobs = await Promise.all(
      ([{ env: "a" }, { env: "b" }, { env: "b", region: "eu" }, { env: "a" }, { env: "b" }] as Array<Record<string, string>>).map((tags) => client.createTemplateVersion("default", { file_id: fileId, tags })),
    );
    const done = await Promise.all(jobs.map((v) => waitForImport(client, v.id)));
    expect(done.map((v) => v.job.status)).toEqual(["succeeded", "succeeded", "succeeded", "succeeded", "succeeded"]);
    expect(done.map((v) => v.job.worker_id)).toEqual([idOf("daemon-a"), idOf("daemon-b"), idOf("daemon-b"), idOf("daemon-a"), idOf("daemon-b")]);

    const stuck = await client.createTemplateVersion("default", { file_id: fileId, tags: { env: "c" } });
    const seen = await client.templateVersion(stuck.id);
    expect(seen.job.status).toBe("pending");
    expect(seen.job.status_detail).toContain('No provisioner daemon matches tags {"env":"c"}');
    expect(seen.job.queue_size).toBeGreaterThanOrEqual(1);

    // Cancel: a pending job ends at once, as canceled.
    await client.cancelTemplateVersion(stuck.id);
    const canceled = await client.templateVersion(stuck.id);
    expect(canceled.job.status).toBe("canceled");
    expect(canceled.job.completed_at).not.toBeNull();
  });

  it("runs 50 jobs queued at once on 3 daemons, each exactly once", async () => {
    const srv = await startTestServer({ provisionerDaemonPsk: PSK });
    const { client } = await createFirstUser(srv);
    for (const name of ["d1", "d2", "d3"]) await daemon(srv, name, {});
    const { id: fileId } = await client.uploadFile(await packDirectory(writeTemplateDir()));
    const versions = await Promise.all(Array.from({ length: 50 }, () => client.createTemplateVersion("default", { file_id: fileId })));
    const done = await Promise.all(versions.map((v) => waitForImport(client, v.id)));
    expect(done.every((v) => v.job.status === "succeeded")).toBe(true);

    const rows = await srv.db.store.kysely
      .selectFrom("provisioner_job_logs")
      .select(["job_id"])
      .where("output", "=", "Acquired by provisioner daemon")
      .execute();
    const perJob = new Map<string, number>();
    for (const r of rows) perJob.set(r.job_id, (perJob.get(r.job_id) ?? 0) + 1);
    expect(versions.every((v) => perJob.get(v.job.id) === 1)).toBe(true);
    // The work was shared.
    const workers = new Set(done.map((v) => v.job.worker_id));
    expect(workers.size).toBe(3);
  });
});

describe("the reaper", () => {
  it("fails a job that no daemon took in time, with the reason in its logs", async () => {
    const srv = await startTestServer({ provisionerJobPendingTimeoutMs: 500, provisionerDaemonPsk: PSK });
    const { client } = await createFirstUser(srv);
    const { id: fileId } = await client.uploadFile(await packDirectory(writeTemplateDir()));
    const v = await client.createTemplateVersion("default", { file_id: fileId, tags: { pool: "nobody" } });
    const ended = await waitForImport(client, v.id);
    expect(ended.job.status).toBe("failed");
    expect(ended.job.error).toBe("No provisioner daemon picked up the job in time.");
    const logs = await client.templateVersionLogs(v.id);
    expect(logs.at(-1)!.output).toMatch(/No provisioner daemon took this job within 1s/);

    // A matching daemon that arrives later takes new jobs, never the failed one.
    await daemon(srv, "late", { pool: "nobody" });
    const next = await client.createTemplateVersion("default", { file_id: fileId, tags: { pool: "nobody" } });
    expect((await waitForImport(client, next.id)).job.status).toBe("succeeded");
    const reaped = await srv.db.store.getProvisionerJobById(ended.job.id);
    expect(reaped!.started_at).toBeNull();
    expect(reaped!.worker_id).toBeNull();
  });
});

describe("daemon authentication", () => {
  it("accepts an owner's token in place of the key, and refuses a member's", async () => {
    const srv = await startTestServer();
    const { client: owner } = await createFirstUser(srv);
    const member = await createUserWithRoles(srv, owner, "member");
    const identity = { name: "token-daemon", organization: "default", tags: {}, provisioners: ["local"], version: "test" };
    const logger = pino({ level: "silent" });
    const asOwner = new WebSocketProvisionerdClient({ url: srv.url, sessionToken: owner.sessionToken, identity, logger });
    await asOwner.connect();
    expect((await owner.provisionerDaemons("default")).map((d) => d.name)).toContain("token-daemon");
    await asOwner.close();
    const asMember = new WebSocketProvisionerdClient({ url: srv.url, sessionToken: member.client.sessionToken, identity: { ...identity, name: "sneaky" }, logger });
    await expect(asMember.connect()).rejects.toThrow(/coderd refused the daemon \(404\)/);
    const noKey = new WebSocketProvisionerdClient({ url: srv.url, psk: "guessed", identity, logger });
    await expect(noKey.connect()).rejects.toThrow(/\(401\).*not enabled/);
    expect((await owner.provisionerDaemons("default")).map((d) => d.name)).not.toContain("sneaky");
  });
});
