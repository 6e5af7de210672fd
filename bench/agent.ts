// Agent benchmark: N simulated agents (100, 1,000, 5,000) connected to one server over the real
// agent RPC, each sending a ping, a stats report and a log line every interval. Reports the server's RSS and CPU
// and the agent RPC latency. The agents' rows (one workspace with N agents, each with its own
// token) are created through the database module, since building 5,000 real workspaces here
// would measure the provisioner instead; everything the agents do goes through the API.
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import WebSocket from "ws";
import { Client } from "../src/codersdk/index.js";
import { createKysely, createPool, createStore } from "../src/database/index.js";
import { envSeconds, log as logAs, percentile, rssMb, ServerProcess } from "./lib.js";

const log = (msg: string) => logAs("agent", msg);
const PASSWORD = "BenchmarkPassword!1";
const COUNTS = (process.env.BENCH_AGENTS ?? "100,1000,5000").split(",").map(Number);

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks of 1/100 s
}

/** One workspace with `count` agents, each with a fresh token; returns the tokens. */
async function createAgents(server: ServerProcess, ownerId: string, count: number): Promise<string[]> {
  const dir = join(server.configDir, "postgres");
  const url = `postgres://coder:${readFileSync(join(dir, "password"), "utf8").trim()}@127.0.0.1:${readFileSync(join(dir, "port"), "utf8").trim()}/postgres`;
  const pool = createPool({ connectionString: url, max: 4 });
  const store = createStore(createKysely(pool));
  try {
    const org = (await store.getDefaultOrganization())!;
    const file = await store.insertFileIfAbsent({ id: randomUUID(), hash: randomBytes(32).toString("hex"), mimetype: "application/x-tar", data: Buffer.from("bench"), created_by: ownerId });
    const job = (type: "template_version_import" | "workspace_build") =>
      store.insertProvisionerJob({ id: randomUUID(), organization_id: org.id, initiator_id: ownerId, provisioner: "local", type, file_id: file.id, input: {}, tags: {} });
    const importJob = await job("template_version_import");
    const version = await store.insertTemplateVersion({ id: randomUUID(), template_id: null, organization_id: org.id, name: `bench-${randomBytes(3).toString("hex")}`, message: "", job_id: importJob.id, created_by: ownerId });
    const template = await store.insertTemplate({ id: randomUUID(), organization_id: org.id, name: `bench-${randomBytes(3).toString("hex")}`, display_name: "", description: "", active_version_id: version.id, created_by: ownerId });
    const workspace = await store.insertWorkspace({ id: randomUUID(), organization_id: org.id, owner_id: ownerId, template_id: template.id, name: `bench-${randomBytes(3).toString("hex")}` });
    const buildJob = await job("workspace_build");
    await store.insertWorkspaceBuild({ id: randomUUID(), workspace_id: workspace.id, template_version_id: version.id, build_number: 1, transition: "start", initiator_id: ownerId, reason: "initiator", job_id: buildJob.id, provisioner_state: null });
    const tokens = Array.from({ length: count }, () => randomBytes(24).toString("base64url"));
    for (let i = 0; i < count; i += 1000) {
      await store.insertJobResources(buildJob.id, "start", [
        {
          type: "bench",
          name: `r${i}`,
          agents: tokens.slice(i, i + 1000).map((t, j) => ({
            id: randomUUID(),
            name: `a${i + j}`,
            authTokenHash: createHash("sha256").update(t).digest(),
            directory: "/tmp",
            environment: {},
            startupScript: "",
            startupScriptBehavior: "non-blocking",
            startupScriptTimeoutSeconds: 0,
            shutdownScript: "",
            connectionTimeoutSeconds: 120,
            metadata: [],
            apps: [],
          })),
        },
      ]);
    }
    return tokens;
  } finally {
    await pool.end();
  }
}

interface SimAgent {
  ws: WebSocket;
  call(method: string, params: unknown): Promise<number>;
}

function connect(url: string, token: string): Promise<SimAgent> {
  return new Promise((resolve, reject) => {
    const u = new URL("/api/v2/workspaceagents/me/rpc", url);
    u.protocol = "ws:";
    const ws = new WebSocket(u, { headers: { "Coder-Session-Token": token } });
    const pending = new Map<number, { start: bigint; done: (ms: number) => void; fail: (e: Error) => void }>();
    let next = 1;
    ws.on("message", (d) => {
      const msg = JSON.parse(d.toString()) as { id: number; error?: { message: string } };
      const p = pending.get(msg.id);
      if (!p) return;
      pending.delete(msg.id);
      if (msg.error) p.fail(new Error(msg.error.message));
      else p.done(Number(process.hrtime.bigint() - p.start) / 1e6);
    });
    ws.once("open", () =>
      resolve({
        ws,
        call: (method, params) =>
          new Promise<number>((done, fail) => {
            const id = next++;
            pending.set(id, { start: process.hrtime.bigint(), done, fail });
            ws.send(JSON.stringify({ id, method, params }));
          }),
      }),
    );
    ws.once("error", reject);
    ws.once("unexpected-response", (_r, res) => reject(new Error(`refused: ${res.statusCode}`)));
  });
}

export interface AgentBenchmarkDoc {
  benchmark: "agent";
  interval_seconds: number;
  duration_seconds: number;
  results: Array<{
    agents: number;
    connected: number;
    rpc_calls: number;
    rpc_errors: number;
    rpc_latency_ms: { p50: number | null; p95: number | null; p99: number | null; max: number | null };
    server_rss_mb: number | null;
    server_cpu_percent: number;
  }>;
}

export async function runAgentBenchmark(): Promise<{ doc: AgentBenchmarkDoc; ok: boolean }> {
  const interval = envSeconds("BENCH_AGENT_INTERVAL_SECONDS", 10);
  const duration = envSeconds("BENCH_DURATION_SECONDS", 30);
  const results: AgentBenchmarkDoc["results"] = [];
  let ok = true;
  for (const count of COUNTS) {
    const server = await ServerProcess.start({ args: ["--provisioner-daemons", "0"], name: "agent" });
    try {
      await server.waitReady();
      const client = new Client(server.url);
      await client.createFirstUser({ email: "admin@example.com", username: "admin", password: PASSWORD });
      client.sessionToken = (await client.loginWithPassword("admin@example.com", PASSWORD)).session_token;
      const tokens = await createAgents(server, (await client.user("me")).id, count);
      log(`${count} agents: connecting`);
      const agents: SimAgent[] = [];
      for (let i = 0; i < tokens.length; i += 100) {
        const batch = await Promise.allSettled(tokens.slice(i, i + 100).map((t) => connect(server.url, t)));
        for (const b of batch) if (b.status === "fulfilled") agents.push(b.value);
      }
      await Promise.all(agents.map((a) => a.call("hello", { version: "bench", operating_system: "linux", expanded_directory: "/tmp" }).catch(() => 0)));
      log(`${agents.length}/${count} connected; running ${duration}s`);
      const pid = server.child.pid!;
      const cpu0 = cpuSeconds(pid);
      const t0 = Date.now();
      const latencies: number[] = [];
      let errors = 0;
      let seq = 0;
      // Each agent reports once per interval, spread evenly over it.
      const timers = agents.map((a, i) =>
        setTimeout(
          function tick() {
            const line = { seq: ++seq, created_at: new Date().toISOString(), source: "bench", level: "info", output: `agent ${i} line ${seq}` };
            const stats = { connections: 1, sessions: { ssh: 1, reconnecting_pty: 0, speedtest: 0, tcp: 0 }, rx_bytes: seq * 100, tx_bytes: seq * 200 };
            for (const call of [a.call("ping", {}), a.call("stats", stats), a.call("logs", { logs: [line] })]) {
              call.then(
                (ms) => latencies.push(ms),
                (err: Error) => {
                  if (errors++ === 0) log(`first RPC error: ${err.message}`);
                },
              );
            }
            timers[i] = setTimeout(tick, interval * 1000);
          },
          (i / agents.length) * interval * 1000,
        ),
      );
      await new Promise((r) => setTimeout(r, duration * 1000));
      for (const t of timers) clearTimeout(t);
      const cpu = ((cpuSeconds(pid) - cpu0) / ((Date.now() - t0) / 1000)) * 100;
      const rss = rssMb(pid);
      for (const a of agents) a.ws.close();
      const sorted = Float64Array.from(latencies).sort();
      if (agents.length < count || errors > 0) ok = false;
      results.push({
        agents: count,
        connected: agents.length,
        rpc_calls: latencies.length,
        rpc_errors: errors,
        rpc_latency_ms: { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99), max: percentile(sorted, 100) },
        server_rss_mb: rss,
        server_cpu_percent: Math.round(cpu),
      });
      log(`${count} agents: p99 ${percentile(sorted, 99)} ms, RSS ${rss} MiB, CPU ${Math.round(cpu)}%`);
    } finally {
      await server.stop();
    }
  }
  return { doc: { benchmark: "agent", interval_seconds: interval, duration_seconds: duration, results }, ok };
}
