// Provisioning benchmark: the real server binary with built-in daemons and the local driver.
// (a) Latency over 50 workspaces, created one after another: from POST to the build having
//     succeeded, and from POST to the agent process having been started (its log line).
// (b) Job throughput with 1, 3 and 10 daemons: 60 template imports queued at once.
import { packDirectory } from "../src/archive/index.js";
import { Client } from "../src/codersdk/index.js";
import { EXAMPLE_TEMPLATE } from "../src/provisioners/index.js";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { log as logAs, percentile, rssMb, ServerProcess } from "./lib.js";

const log = (msg: string) => logAs("provision", msg);
const PASSWORD = "BenchmarkPassword!1";
const WORKSPACES = Number(process.env.BENCH_WORKSPACES ?? 50);
const JOBS = Number(process.env.BENCH_JOBS ?? 60);
const DAEMON_COUNTS = [1, 3, 10];

async function templateArchive(): Promise<Uint8Array> {
  const dir = mkdtempSync(join(tmpdir(), "coder-bench-template-"));
  try {
    for (const [name, text] of Object.entries(EXAMPLE_TEMPLATE)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), text);
    }
    return await packDirectory(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function login(url: string): Promise<Client> {
  const client = new Client(url);
  await client.createFirstUser({ email: "admin@example.com", username: "admin", password: PASSWORD });
  client.sessionToken = (await client.loginWithPassword("admin@example.com", PASSWORD)).session_token;
  return client;
}

async function drain<T>(it: AsyncIterable<T>, each?: (v: T) => void): Promise<void> {
  for await (const v of it) each?.(v);
}

const stats = (values: number[]) => {
  const sorted = Float64Array.from(values).sort();
  return { p50: percentile(sorted, 50), p95: percentile(sorted, 95), max: percentile(sorted, 100), n: values.length };
};

async function withServer<T>(daemons: number, fn: (client: Client, server: ServerProcess) => Promise<T>): Promise<T> {
  const server = await ServerProcess.start({ args: ["--provisioner-daemons", String(daemons)], name: "provision" });
  try {
    await server.waitReady();
    return await fn(await login(server.url), server);
  } finally {
    await server.stop();
  }
}

export interface ProvisionBenchmarkDoc {
  benchmark: "provision";
  machine: { cpus: number; node: string };
  workspace_build: { to_build_succeeded_ms: ReturnType<typeof stats>; to_agent_started_ms: ReturnType<typeof stats> };
  job_throughput: Array<{ daemons: number; jobs: number; seconds: number; jobs_per_second: number }>;
  server_rss_mb: number | null;
}

export async function runProvisionBenchmark(): Promise<{ doc: ProvisionBenchmarkDoc; ok: boolean }> {
  const archive = await templateArchive();
  let ok = true;
  let rss: number | null = null;

  const latency = await withServer(3, async (client, server) => {
    const { id } = await client.uploadFile(archive);
    const version = await client.createTemplateVersion("default", { file_id: id });
    await drain(client.followTemplateVersionLogs(version.id));
    const template = await client.createTemplate("default", { name: "bench", template_version_id: version.id });
    const toSucceeded: number[] = [];
    const toAgent: number[] = [];
    const created: string[] = [];
    for (let i = 0; i < WORKSPACES; i++) {
      const t0 = Date.now();
      const ws = await client.createWorkspace("me", { name: `ws-${i}`, template_id: template.id });
      let agentAt = 0;
      await drain(client.followWorkspaceBuildLogs(ws.latest_build.id), (l) => {
        if (!agentAt && l.output.startsWith("Started agent")) agentAt = Date.parse(l.created_at);
      });
      const build = await client.workspaceBuild(ws.latest_build.id);
      if (build.status !== "running") {
        ok = false;
        log(`workspace ${i}: build ${build.status}: ${build.job.error}`);
        continue;
      }
      toSucceeded.push(Date.parse(build.job.completed_at!) - t0);
      toAgent.push(agentAt - t0);
      created.push(ws.id);
    }
    log(`built ${created.length} workspaces; deleting them`);
    for (const id of created) {
      const b = await client.createWorkspaceBuild(id, { transition: "delete" });
      await drain(client.followWorkspaceBuildLogs(b.id));
    }
    rss = rssMb(server.child.pid!);
    return { to_build_succeeded_ms: stats(toSucceeded), to_agent_started_ms: stats(toAgent) };
  });

  const throughput: ProvisionBenchmarkDoc["job_throughput"] = [];
  for (const daemons of DAEMON_COUNTS) {
    const row = await withServer(daemons, async (client) => {
      const { id } = await client.uploadFile(archive);
      const t0 = Date.now();
      const versions = await Promise.all(Array.from({ length: JOBS }, () => client.createTemplateVersion("default", { file_id: id })));
      await Promise.all(versions.map((v) => drain(client.followTemplateVersionLogs(v.id))));
      const seconds = (Date.now() - t0) / 1000;
      const failed = (await Promise.all(versions.map((v) => client.templateVersion(v.id)))).filter((v) => v.job.status !== "succeeded");
      if (failed.length) {
        ok = false;
        log(`${failed.length} import jobs did not succeed with ${daemons} daemons`);
      }
      return { daemons, jobs: JOBS, seconds: Math.round(seconds * 100) / 100, jobs_per_second: Math.round((JOBS / seconds) * 10) / 10 };
    });
    log(`${daemons} daemon(s): ${row.jobs_per_second} jobs/s`);
    throughput.push(row);
  }

  return {
    doc: {
      benchmark: "provision",
      machine: { cpus: cpus().length, node: process.version },
      workspace_build: latency,
      job_throughput: throughput,
      server_rss_mb: rss,
    },
    ok,
  };
}
