// `coder health`: the deployment's health report (owners only), one section per block with its
// severity and each warning's code and message; exits 1 when the deployment is in error.
import type { Command } from "commander";
import type { HealthReport, HealthSectionBase } from "../../codersdk/index.js";
import { outputFormat } from "../output.js";
import { authenticatedClient, type GlobalOptions } from "../session.js";

const LABELS: Record<keyof HealthReport["sections"], string> = {
  access_url: "Access URL",
  database: "Database",
  derp: "Relay (DERP)",
  websocket: "WebSocket",
  provisioner_daemons: "Provisioner daemons",
  replicas: "Replicas",
};

function detail(name: keyof HealthReport["sections"], r: HealthReport): string {
  const s = r.sections;
  switch (name) {
    case "access_url":
      return s.access_url.reachable ? `${s.access_url.access_url}: HTTP ${s.access_url.status_code} in ${s.access_url.latency_ms} ms` : s.access_url.access_url;
    case "database":
      return s.database.reachable ? `median latency ${s.database.latency_ms} ms (threshold ${s.database.threshold_ms} ms)` : "unreachable";
    case "derp": {
      const regions = Object.values(s.derp.regions ?? {});
      return regions.map((g) => `${g.region_code}: ${g.healthy ? `${g.latency_ms} ms` : (g.error ?? "unreachable")}`).join(", ") || "no regions";
    }
    case "websocket":
      return s.websocket.skipped ? "skipped (embedded relay disabled)" : s.websocket.latency_ms !== undefined ? `${s.websocket.url} in ${s.websocket.latency_ms} ms` : s.websocket.url;
    case "provisioner_daemons":
      return `${s.provisioner_daemons.connected} connected, ${s.provisioner_daemons.pending_jobs} job(s) pending`;
    case "replicas": {
      const peers = s.replicas.peers.map((p) => `${p.hostname}: ${p.latency_ms !== undefined ? `${p.latency_ms} ms` : (p.error ?? "not measured yet")}`);
      return `${s.replicas.self.hostname} and ${peers.length} other replica(s)${peers.length ? ` (${peers.join(", ")})` : ""}`;
    }
  }
}

export function formatHealth(r: HealthReport): string {
  const lines = [`Deployment health: ${r.severity.toUpperCase()} (checked ${r.time})`, ""];
  for (const name of Object.keys(LABELS) as Array<keyof HealthReport["sections"]>) {
    const s: HealthSectionBase | undefined = r.sections[name];
    if (!s) continue;
    let d = "";
    try {
      d = detail(name, r);
    } catch {
      d = "";
    }
    lines.push(`${LABELS[name].padEnd(20)} ${s.severity.toUpperCase().padEnd(8)} ${d}`);
    for (const w of s.warnings) lines.push(`  ${w.code}: ${w.message}`);
    if (s.error && !s.warnings.some((w) => w.message === s.error)) lines.push(`  error: ${s.error}`);
  }
  return lines.join("\n") + "\n";
}

export async function run(globals: GlobalOptions, cmd: Command): Promise<void> {
  const opts = cmd.opts<{ output?: string; force?: boolean }>();
  const client = authenticatedClient(globals);
  const report = await client.debugHealth({ force: !!opts.force });
  if (outputFormat(opts.output) === "json") process.stdout.write(JSON.stringify(report, null, 2) + "\n");
  else process.stdout.write(formatHealth(report));
  if (report.severity === "error") process.exitCode = 1;
}
