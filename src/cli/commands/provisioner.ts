import { hostname } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { build, coderCommand, coderInstallRoot } from "../../buildinfo/index.js";
import { defaultCacheDir, optionName, resolveDeploymentValues, serverOptions } from "../../codersdk/deployment.js";
import type { ProvisionerDaemon as DaemonInfo } from "../../codersdk/index.js";
import { CliError } from "../errors.js";
import { outputFormat, render, shortTime, type Column } from "../output.js";
import { authenticatedClient, configDir, normalizeUrl, type GlobalOptions } from "../session.js";

interface StartFlags {
  name?: string;
  tag?: string[];
  psk?: string;
  organization: string;
  cacheDir?: string;
  verbose?: boolean;
  prometheusEnable?: string | boolean;
  prometheusAddress?: string;
}

/**
 * --prometheus-enable / --prometheus-address with their CODER_PROMETHEUS_* variables, parsed and
 * named in errors exactly as `coder server` does.
 */
function prometheusSettings(f: StartFlags): { enable: boolean; host: string; port: number; address: string; name: string } {
  const options = serverOptions.filter((o) => o.key === "prometheusEnable" || o.key === "prometheusAddress");
  const { values, errors } = resolveDeploymentValues({ "prometheus-enable": f.prometheusEnable, "prometheus-address": f.prometheusAddress }, process.env, options);
  if (errors.length) throw new CliError(errors.map((e) => e.message).join("; "));
  const address = values.prometheusAddress;
  const i = address.lastIndexOf(":");
  const host = address.slice(0, i).replace(/^\[|\]$/g, "") || "0.0.0.0";
  const name = optionName(options.find((o) => o.key === "prometheusAddress")!);
  return { enable: values.prometheusEnable, host, port: Number(address.slice(i + 1)), address, name };
}

function parseTags(tags: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of tags) {
    const eq = t.indexOf("=");
    if (eq <= 0) throw new CliError(`--tag must be key=value, not "${t}"`);
    out[t.slice(0, eq)] = t.slice(eq + 1);
  }
  return out;
}

/** `coder provisioner start`: one external daemon, until a signal stops it. */
export async function start(globals: GlobalOptions, cmd: Command): Promise<void> {
  const f = cmd.opts() as StartFlags;
  const dir = configDir(globals);
  const rawUrl = globals.url ?? process.env.CODER_URL ?? dir.read("url");
  if (!rawUrl) throw new CliError("Give the deployment's URL with --url or CODER_URL.");
  const url = normalizeUrl(rawUrl);
  const psk = f.psk ?? process.env.CODER_PROVISIONER_DAEMON_PSK ?? "";
  const sessionToken = psk ? undefined : (globals.token ?? process.env.CODER_SESSION_TOKEN ?? dir.read("session"));
  if (!psk && !sessionToken) throw new CliError("Authenticate with --psk / CODER_PROVISIONER_DAEMON_PSK, or log in as an owner (coder login).");
  const tags = parseTags(f.tag);
  tags.host ??= hostname();
  const name = f.name ?? `${hostname()}-${process.pid}`;
  const cacheDir = f.cacheDir ?? process.env.CODER_CACHE_DIRECTORY ?? defaultCacheDir();
  const prom = prometheusSettings(f);

  const { createLogger } = await import("../../logging/index.js");
  const logger = createLogger({ human: "/dev/stderr", json: "", verbose: Boolean(f.verbose), name: "provisionerd" });
  const { ProvisionerDaemon, ProvisionerdMetrics, WebSocketProvisionerdClient, serveMetrics } = await import("../../provisionerd/index.js");
  const { LocalDriver } = await import("../../provisioners/index.js");
  const provisioners = ["local"];
  // Bound before anything else starts: a bad address fails at once, naming the setting.
  const metrics = prom.enable ? new ProvisionerdMetrics(provisioners) : undefined;
  let endpoint: Awaited<ReturnType<typeof serveMetrics>> | undefined;
  if (metrics) {
    try {
      endpoint = await serveMetrics(metrics, prom.host, prom.port);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why = e.code === "EADDRINUSE" ? "the address is already in use" : e.code === "EADDRNOTAVAIL" ? "no interface has this address" : e.code === "EACCES" ? "permission denied" : e.message;
      throw new CliError(`${prom.name}: cannot listen on ${prom.address}: ${why}`);
    }
    logger.info({ address: endpoint.url }, `Prometheus metrics at ${endpoint.url}`);
  }
  const client = new WebSocketProvisionerdClient({
    url,
    psk: psk || undefined,
    sessionToken,
    identity: { name, organization: f.organization, tags, provisioners, version: build.version },
    logger,
  });
  const daemon = new ProvisionerDaemon({
    client,
    drivers: { local: new LocalDriver({ workspacesDir: join(cacheDir, "workspaces"), agentCommand: [...coderCommand, "agent"], agentReadOnlyPaths: [coderInstallRoot] }) },
    workDir: join(cacheDir, "provisionerd", name),
    logger,
    observer: metrics,
  });
  logger.info({ name, tags, url }, `Starting provisioner daemon "${name}" with tags ${JSON.stringify(tags)}`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    // As the scaling guide says: SIGHUP (and SIGTERM) finish the current job, SIGINT cancels it.
    const mode = signal === "SIGINT" ? "cancel" : "graceful";
    logger.info({ signal, job_id: daemon.currentJobId }, mode === "cancel" ? "interrupted: canceling the current job and exiting" : "finishing the current job, then exiting");
    daemon.shutdown(mode, `the provisioner daemon received ${signal}`).then(
      async () => {
        await endpoint?.close();
        logger.info("provisioner daemon stopped");
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  for (const sig of ["SIGHUP", "SIGTERM", "SIGINT"] as const) process.on(sig, () => stop(sig));

  // Refused credentials surface at once rather than as an endless retry loop.
  try {
    await client.connect();
  } catch (err) {
    await client.close();
    await endpoint?.close();
    throw new CliError((err as Error).message);
  }
  logger.info("connected to coderd; waiting for jobs");
  daemon.start();
}

const columns: Column<DaemonInfo>[] = [
  { header: "NAME", value: (d) => d.name },
  { header: "STATUS", value: (d) => d.status },
  { header: "TAGS", value: (d) => Object.entries(d.tags).map(([k, v]) => `${k}=${v}`).join(" ") },
  { header: "VERSION", value: (d) => d.version },
  { header: "LAST SEEN", value: (d) => shortTime(d.last_seen_at) },
  { header: "CURRENT JOB", value: (d) => d.current_job_id ?? "" },
];

export async function list(globals: GlobalOptions, cmd: Command): Promise<void> {
  const o = cmd.opts() as { organization: string; output?: string };
  const format = outputFormat(o.output);
  process.stdout.write(render(format, await authenticatedClient(globals).provisionerDaemons(o.organization), columns));
}
