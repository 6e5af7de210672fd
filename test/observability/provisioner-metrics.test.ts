// Metrics of the provisioner queue as operators watch it while scaling external daemons: a real
// `coder provisioner start --prometheus-enable` serving its own /metrics (jobs running, job
// timings by status, process metrics; checked by the real `promtool`), and coderd's view of the
// same queue (the jobs pending for a tag set no daemon serves yet, how long they waited).
import { spawn, spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { rmSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { packDirectory } from "../../src/archive/index.js";
import { serveMetrics } from "../../src/promhttp/index.js";
import { EXAMPLE_TEMPLATE } from "../../src/provisioners/index.js";
import { runCli, startProvisionerProcess, tempConfigDir } from "../helpers/binary.js";
import { createFirstUser, startTestServer } from "../helpers/coderd.js";
import { waitForBuild, waitForImport, writeTemplateDir } from "../helpers/templates.js";

const PSK = "a-long-random-pre-shared-key-for-metrics-tests";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parse(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) types.set(t[1]!, t[2]!);
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { types, samples };
}

const find = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));

function promtoolCheck(text: string): Promise<{ code: number | null; output: string }> {
  if (spawnSync("promtool", ["--version"]).error) throw new Error("promtool is not installed: install the Debian package `prometheus`");
  return new Promise((res, rej) => {
    const p = spawn("promtool", ["check", "metrics"], { stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    p.stdout.on("data", (d) => (output += d));
    p.stderr.on("data", (d) => (output += d));
    p.on("error", rej);
    p.on("close", (code) => res({ code, output }));
    p.stdin.end(text);
  });
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("text/plain");
  return res.text();
}

describe("external provisioner daemon metrics", () => {
  it("a job waits for a daemon with its tags, then the daemon's /metrics show the jobs it ran", async () => {
    const srv = await startTestServer({ provisionerDaemonPsk: PSK, prometheus: { collectDbMetrics: false, collectAgentStats: false, aggregateAgentStatsBy: [] } });
    const coderdMetrics = await serveMetrics(srv.coderd.metrics!, "127.0.0.1", 0);
    try {
      const { client } = await createFirstUser(srv);
      // No daemon serves cluster=metrics yet: the import waits in the queue.
      const tags = { cluster: "metrics", region: "eu" };
      const dir = writeTemplateDir(EXAMPLE_TEMPLATE);
      const { id: fileId } = await client.uploadFile(await packDirectory(dir));
      rmSync(dir, { recursive: true, force: true });
      const version = await client.createTemplateVersion("default", { file_id: fileId, tags });
      let coderd = parse(await scrape(coderdMetrics.url));
      expect(coderd.types.get("coderd_provisionerd_jobs_pending")).toBe("gauge");
      expect(find(coderd.samples, "coderd_provisionerd_jobs_pending")).toEqual([
        { name: "coderd_provisionerd_jobs_pending", labels: { provisioner: "local", tags: "cluster=metrics,region=eu" }, value: 1 },
      ]);
      await new Promise((r) => setTimeout(r, 1200));

      const daemon = await startProvisionerProcess(["--url", srv.url, "--name", "metered", "--tag", "cluster=metrics", "--tag", "region=eu"], {
        CODER_PROVISIONER_DAEMON_PSK: PSK,
        CODER_CACHE_DIRECTORY: tempConfigDir(),
        CODER_PROMETHEUS_ENABLE: "true",
        CODER_PROMETHEUS_ADDRESS: "127.0.0.1:0",
      });
      const metricsUrl = /Prometheus metrics at (http:\/\/\S+\/metrics)/.exec(daemon.output())![1]!;
      expect(new URL(metricsUrl).hostname).toBe("127.0.0.1");
      // Before any job: the series exist, at zero.
      let text = await scrape(metricsUrl);
      expect(text).toMatch(/^coderd_provisionerd_jobs_current\{provisioner="local"\} 0$/m);

      const imported = await waitForImport(client, version.id);
      expect(imported.job.status).toBe("succeeded");
      const template = await client.createTemplate("default", { name: "metered", template_version_id: version.id });
      const ws = await client.createWorkspace("me", { name: "metered", template_id: template.id });
      expect((await waitForBuild(client, ws.latest_build.id)).status).toBe("running");

      text = await scrape(metricsUrl);
      const check = await promtoolCheck(text);
      expect(check.output, check.output).toBe("");
      expect(check.code).toBe(0);
      const { types, samples } = parse(text);
      expect(types.get("coderd_provisionerd_jobs_current")).toBe("gauge");
      expect(types.get("coderd_provisionerd_job_timings_seconds")).toBe("histogram");
      expect(types.get("coderd_provisionerd_num_daemons")).toBe("gauge");
      expect(find(samples, "coderd_provisionerd_jobs_current")).toEqual([{ name: "coderd_provisionerd_jobs_current", labels: { provisioner: "local" }, value: 0 }]);
      const timings = find(samples, "coderd_provisionerd_job_timings_seconds_count");
      for (const s of timings) expect(Object.keys(s.labels).sort()).toEqual(["provisioner", "status"]);
      expect(find(samples, "coderd_provisionerd_job_timings_seconds_count", { provisioner: "local", status: "success" })[0]?.value).toBe(2); // import + build
      expect(find(samples, "coderd_provisionerd_job_timings_seconds_count", { status: "failed" })).toEqual([]);
      expect(find(samples, "coderd_provisionerd_job_timings_seconds_sum", { status: "success" })[0]!.value).toBeGreaterThan(0);
      expect(find(samples, "coderd_provisionerd_num_daemons")[0]!.value).toBe(1);
      // The daemon's own process, as the scaling guide asks for every component.
      expect(types.get("process_cpu_seconds_total")).toBe("counter");
      expect(find(samples, "process_resident_memory_bytes")[0]!.value).toBeGreaterThan(0);

      // coderd: nothing pends any more; the import waited at least as long as no daemon served it.
      coderd = parse(await scrape(coderdMetrics.url));
      expect(find(coderd.samples, "coderd_provisionerd_jobs_pending")).toEqual([]);
      expect(find(coderd.samples, "coderd_provisionerd_job_queue_wait_seconds_count", { provisioner: "local" })[0]!.value).toBe(2);
      expect(find(coderd.samples, "coderd_provisionerd_job_queue_wait_seconds_sum", { provisioner: "local" })[0]!.value).toBeGreaterThanOrEqual(1.2);
      // The server counts the external daemon's jobs too (they were handed out by this replica).
      expect(find(coderd.samples, "coderd_provisionerd_job_timings_seconds_count", { provisioner: "local", status: "success" })[0]!.value).toBe(2);

      expect((await waitForBuild(client, (await client.createWorkspaceBuild(ws.id, { transition: "delete" })).id)).status).toBe("deleted");
      expect(await daemon.stop("SIGTERM")).toBe(0);
    } finally {
      await coderdMetrics.close();
    }
  });

  // Needs the two options declared on `provisioner start` in src/cli/index.ts.
  it("--prometheus-enable --prometheus-address serve the daemon's metrics where the flags say, and a bad one is named", async () => {
    const bad = await runCli(["provisioner", "start", "--url", "http://127.0.0.1:9", "--psk", PSK, "--prometheus-enable", "--prometheus-address", "127.0.0.1:99999"], {
      CODER_CACHE_DIRECTORY: tempConfigDir(),
    });
    expect(bad.stderr, "declare --prometheus-enable and --prometheus-address on `provisioner start` in src/cli/index.ts").not.toContain("unknown option");
    expect(bad.code, bad.stderr).toBe(1);
    expect(bad.stderr).toContain('error: --prometheus-address / CODER_PROMETHEUS_ADDRESS: "127.0.0.1:99999" is not a host:port address');

    const srv = await startTestServer({ provisionerDaemonPsk: PSK });
    const daemon = await startProvisionerProcess(["--url", srv.url, "--psk", PSK, "--prometheus-enable", "--prometheus-address", "127.0.0.1:0"], { CODER_CACHE_DIRECTORY: tempConfigDir() });
    const metricsUrl = /Prometheus metrics at (http:\/\/\S+\/metrics)/.exec(daemon.output())![1]!;
    expect(await scrape(metricsUrl)).toContain("coderd_provisionerd_jobs_current");
    expect((await fetch(metricsUrl.replace(/\/metrics$/, "/other"))).status).toBe(404);
    expect(await daemon.stop("SIGTERM")).toBe(0);
  });

  it("without --prometheus-enable the daemon serves no metrics", async () => {
    const srv = await startTestServer({ provisionerDaemonPsk: PSK });
    const daemon = await startProvisionerProcess(["--url", srv.url, "--psk", PSK], { CODER_CACHE_DIRECTORY: tempConfigDir(), CODER_PROMETHEUS_ADDRESS: "127.0.0.1:0" });
    expect(daemon.output()).not.toContain("Prometheus metrics at");
    expect(await daemon.stop("SIGTERM")).toBe(0);
  });

  it("a bad or taken address fails at once with an error naming the setting", async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, "127.0.0.1", () => r()));
    const port = (taken.address() as { port: number }).port;
    try {
      const base = ["provisioner", "start", "--url", "http://127.0.0.1:9", "--psk", PSK];
      const env = { CODER_CACHE_DIRECTORY: tempConfigDir() };
      const cases: Array<[string[], Record<string, string>, string[]]> = [
        [[], { CODER_PROMETHEUS_ENABLE: "true", CODER_PROMETHEUS_ADDRESS: "127.0.0.1:99999" }, ["--prometheus-address / CODER_PROMETHEUS_ADDRESS", "127.0.0.1:99999"]],
        [[], { CODER_PROMETHEUS_ENABLE: "true", CODER_PROMETHEUS_ADDRESS: "localhost" }, ["--prometheus-address / CODER_PROMETHEUS_ADDRESS", '"localhost" is not a host:port address']],
        [[], { CODER_PROMETHEUS_ENABLE: "true", CODER_PROMETHEUS_ADDRESS: `127.0.0.1:${port}` }, ["--prometheus-address / CODER_PROMETHEUS_ADDRESS", `cannot listen on 127.0.0.1:${port}`, "already in use"]],
        [[], { CODER_PROMETHEUS_ENABLE: "maybe" }, ["--prometheus-enable / CODER_PROMETHEUS_ENABLE", '"maybe" is not a boolean']],
      ];
      for (const [args, extra, wanted] of cases) {
        const r = await runCli([...base, ...args], { ...env, ...extra });
        expect(r.code, r.stderr).toBe(1);
        const errors = r.stderr.split("\n").filter((l) => l.startsWith("error: "));
        expect(errors, r.stderr).toHaveLength(1);
        for (const w of wanted) expect(errors[0]).toContain(w);
        expect(r.stderr).not.toMatch(/\n\s+at /);
      }
    } finally {
      taken.close();
    }
  });
});
