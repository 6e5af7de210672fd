// The deployment health checks, one per section. Each takes only what it probes, never throws
// (a failure is a section in error) and is bounded by a timeout, so the report always arrives.
import WebSocket from "ws";
import type * as sdk from "../../codersdk/index.js";
import { relayNodeUrl, type RelayMap } from "../../tailnet/index.js";

export const DEFAULT_CHECK_TIMEOUT_MS = 10_000;
export const DATABASE_PINGS = 5;
/** A daemon not heard from for this long (and not disconnected cleanly) is stale. */
export const DAEMON_STALE_AFTER_MS = 90_000;

type Section = sdk.HealthSectionBase;

const RANK: Record<sdk.HealthSeverity, number> = { ok: 0, warning: 1, error: 2 };

export function worst(...s: sdk.HealthSeverity[]): sdk.HealthSeverity {
  return s.reduce<sdk.HealthSeverity>((a, b) => (RANK[b] > RANK[a] ? b : a), "ok");
}

/** healthy/severity from the warnings and error already set on a section. */
function settle<U extends { warnings: sdk.HealthMessage[]; error?: string }>(s: U): U & { healthy: boolean; severity: sdk.HealthSeverity } {
  const sev: sdk.HealthSeverity = s.error ? "error" : s.warnings.length ? "warning" : "ok";
  return { ...s, healthy: sev !== "error", severity: sev };
}

export function median(xs: number[]): number {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

function message(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e?.name === "TimeoutError" || e?.name === "AbortError") return "timed out";
  const cause = e?.cause?.code ?? e?.cause?.message;
  return cause ? `${e.message} (${cause})` : String(e?.message ?? err);
}

/** Rejects with a TimeoutError when p takes longer than ms. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`${what} did not finish within ${ms} ms`), { name: "TimeoutError" })), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------- access URL

export async function checkAccessUrl(accessUrl: string, timeoutMs = DEFAULT_CHECK_TIMEOUT_MS): Promise<sdk.AccessURLHealth> {
  const base = { access_url: accessUrl, reachable: false, status_code: 0, healthz_response: "", latency_ms: 0, warnings: [] as sdk.HealthMessage[] };
  let url: URL;
  try {
    url = new URL("/healthz", accessUrl);
  } catch {
    return settle({ ...base, error: `EACS01: the access URL "${accessUrl}" is not a valid URL; set CODER_ACCESS_URL.`, warnings: [{ code: "EACS01", message: `The access URL "${accessUrl}" is not a valid URL; set CODER_ACCESS_URL to the URL users reach this deployment at.` }] });
  }
  const t0 = performance.now();
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: "manual" });
    const text = (await res.text()).slice(0, 256);
    const r = { ...base, reachable: true, status_code: res.status, healthz_response: text, latency_ms: round(performance.now() - t0) };
    if (res.status !== 200 || text.trim() !== "OK") {
      const msg = `GET ${url.href} answered ${res.status} ${JSON.stringify(text.slice(0, 80))}, not 200 "OK": CODER_ACCESS_URL may point at something other than this deployment (a proxy or another service).`;
      return settle({ ...r, error: msg, warnings: [{ code: "EACS02", message: msg }] });
    }
    return settle(r);
  } catch (err) {
    const msg = `GET ${url.href} failed: ${message(err)}. Check that CODER_ACCESS_URL resolves and is reachable from the server itself (DNS, firewall, TLS, proxy).`;
    return settle({ ...base, latency_ms: round(performance.now() - t0), error: msg, warnings: [{ code: "EACS01", message: msg }] });
  }
}

// ---------------------------------------------------------------- database

export async function checkDatabase(
  ping: () => Promise<unknown>,
  thresholdMs: number,
  opts: { pings?: number; timeoutMs?: number } = {},
): Promise<sdk.DatabaseHealth> {
  const n = opts.pings ?? DATABASE_PINGS;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
  const pings: number[] = [];
  const base = { reachable: false, latency_ms: 0, threshold_ms: thresholdMs, pings_ms: pings, warnings: [] as sdk.HealthMessage[] };
  try {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await withTimeout(ping(), timeoutMs, "database ping");
      pings.push(round(performance.now() - t0));
    }
  } catch (err) {
    const msg = `The database did not answer "SELECT 1": ${message(err)}. Check that Postgres is up and reachable (CODER_PG_CONNECTION_URL) and that its connection pool is not exhausted.`;
    return settle({ ...base, latency_ms: median(pings), error: msg, warnings: [{ code: "EDB01", message: msg }] });
  }
  const latency = median(pings);
  const warnings: sdk.HealthMessage[] = [];
  if (latency > thresholdMs) {
    warnings.push({
      code: "EDB02",
      message: `Median database latency ${latency} ms over ${n} pings is above the threshold of ${thresholdMs} ms (CODER_HEALTH_CHECK_THRESHOLD_DATABASE). Check the network between coderd and Postgres and the database's load.`,
    });
  }
  return settle({ ...base, reachable: true, latency_ms: latency, warnings });
}

// ---------------------------------------------------------------- relay (DERP)

export async function checkDerp(map: RelayMap, timeoutMs = DEFAULT_CHECK_TIMEOUT_MS): Promise<sdk.DERPHealth> {
  const regions: Record<string, sdk.DERPRegionHealth> = {};
  const warnings: sdk.HealthMessage[] = [];
  const entries = Object.entries(map.Regions);
  if (!entries.length) {
    warnings.push({ code: "EDERP02", message: "The relay map has no regions: peers that cannot connect directly cannot connect at all. Enable the embedded relay (CODER_DERP_SERVER_ENABLE) or configure CODER_DERP_CONFIG_URL/PATH." });
  }
  await Promise.all(
    entries.map(async ([key, region]) => {
      const r: sdk.DERPRegionHealth = { region_id: region.RegionID, region_code: region.RegionCode, region_name: region.RegionName, url: "", healthy: false };
      regions[key] = r;
      const node = region.Nodes[0];
      if (!node) {
        r.error = "the region has no nodes";
        warnings.push({ code: "EDERP01", message: `Relay region ${region.RegionCode} (${region.RegionID}) has no nodes; fix the relay map.` });
        return;
      }
      const t0 = performance.now();
      try {
        const url = new URL(relayNodeUrl(node));
        url.protocol = url.protocol === "wss:" ? "https:" : "http:";
        url.pathname = "/derp/latency-check";
        url.search = "";
        r.url = url.href;
        const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
        await res.arrayBuffer();
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        r.latency_ms = round(performance.now() - t0);
        r.healthy = true;
      } catch (err) {
        r.error = message(err);
        warnings.push({
          code: "EDERP01",
          message: `Relay region ${region.RegionCode} (${region.RegionID}) is unreachable at ${r.url || "its node URL"}: ${r.error}. Peers relayed through it cannot connect; check the relay's address and firewall.`,
        });
      }
    }),
  );
  const healthyRegions = Object.values(regions).filter((r) => r.healthy).length;
  const error = entries.length > 0 && healthyRegions === 0 ? "No relay region is reachable: peers that cannot connect directly cannot connect at all." : undefined;
  return settle({ regions, warnings, ...(error ? { error } : {}) });
}

// ---------------------------------------------------------------- websocket

/** Opens a WebSocket to the relay endpoint at the access URL and waits for its first frame. */
export async function checkWebsocket(accessUrl: string, relayEnabled: boolean, timeoutMs = DEFAULT_CHECK_TIMEOUT_MS): Promise<sdk.WebsocketHealth> {
  let url: URL;
  try {
    url = new URL("/derp", accessUrl);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  } catch {
    return settle({ url: "", warnings: [], error: `The access URL "${accessUrl}" is not a valid URL.` });
  }
  if (!relayEnabled) return settle({ url: url.href, skipped: true, warnings: [] });
  const t0 = performance.now();
  try {
    await new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(url, { handshakeTimeout: timeoutMs });
      const timer = setTimeout(() => {
        ws.terminate();
        reject(Object.assign(new Error("timed out"), { name: "TimeoutError" }));
      }, timeoutMs);
      const done = (err?: Error) => {
        clearTimeout(timer);
        ws.removeAllListeners();
        ws.on("error", () => {});
        ws.terminate();
        if (err) reject(err);
        else resolve();
      };
      ws.once("message", () => done());
      ws.once("unexpected-response", (_req, res) => done(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
      ws.once("error", (err) => done(err));
      ws.once("close", (code) => done(new Error(`closed before the first frame (code ${code})`)));
    });
    return settle({ url: url.href, latency_ms: round(performance.now() - t0), warnings: [] });
  } catch (err) {
    const msg = `A WebSocket to ${url.href} failed: ${message(err)}. A load balancer or proxy in front of coderd must pass WebSocket upgrades (Connection: Upgrade), or workspaces, terminals and the relay will not work.`;
    return settle({ url: url.href, warnings: [{ code: "EWS01", message: msg }], error: msg });
  }
}

// ---------------------------------------------------------------- provisioner daemons

export interface DaemonInfo {
  id: string;
  name: string;
  organization_id: string;
  version: string;
  last_seen_at: Date | null;
  disconnected_at: Date | null;
}

export function checkProvisionerDaemons(
  daemons: DaemonInfo[],
  pendingJobs: number,
  serverVersion: string,
  now = Date.now(),
): sdk.ProvisionerDaemonsHealth {
  const warnings: sdk.HealthMessage[] = [];
  const items: sdk.ProvisionerDaemonHealthItem[] = daemons.map((d) => {
    const fresh = !!d.last_seen_at && now - d.last_seen_at.getTime() <= DAEMON_STALE_AFTER_MS;
    return {
      id: d.id,
      name: d.name,
      organization_id: d.organization_id,
      version: d.version,
      last_seen_at: d.last_seen_at?.toISOString() ?? null,
      connected: !d.disconnected_at && fresh,
      stale: !d.disconnected_at && !fresh,
    };
  });
  const connected = items.filter((d) => d.connected);
  for (const d of items.filter((x) => x.stale)) {
    warnings.push({
      code: "EPD02",
      message: `Provisioner daemon "${d.name}" has not been heard from since ${d.last_seen_at ?? "it registered"} (over ${DAEMON_STALE_AFTER_MS / 1000}s) but never disconnected: its process or host may have died. Restart it, or ignore this if it was removed.`,
    });
  }
  for (const d of connected.filter((x) => x.version !== serverVersion)) {
    warnings.push({
      code: "EPD03",
      message: `Provisioner daemon "${d.name}" runs version ${d.version || "(unknown)"}, the server ${serverVersion}: upgrade the daemon to the server's version.`,
    });
  }
  let error: string | undefined;
  if (pendingJobs > 0 && connected.length === 0) {
    error = `${pendingJobs} provisioner job(s) are waiting and no provisioner daemon is connected: start one with "coder provisioner start" or set CODER_PROVISIONER_DAEMONS above 0.`;
    warnings.unshift({ code: "EPD01", message: error });
  }
  return settle({ server_version: serverVersion, connected: connected.length, pending_jobs: pendingJobs, daemons: items, warnings, ...(error ? { error } : {}) });
}

/** A section for a check that threw or timed out (it never should; this keeps the report whole). */
export function failedSection(err: unknown): Section {
  const msg = `The check failed: ${message(err)}.`;
  return { healthy: false, severity: "error", warnings: [{ code: "EUNKNOWN", message: msg }], error: msg };
}

// ---------------------------------------------------------------- replicas

export interface ReplicasInput {
  self: sdk.Replica;
  /** What this replica finds wrong now: latency conditions ("…latency…" keys) and others. */
  conditions: Array<{ key: string; message: string }>;
  /** The other alive replicas, with this replica's view of their relays. */
  peers: Array<{ replica: sdk.Replica; latency_ms?: number; error?: string; mesh?: { connected: boolean; error?: string } }>;
  latencyThresholdMs: number;
}

/**
 * This replica's own conditions (EREP02 for latency above the threshold, EREP01 for the rest),
 * then EREP01 for every other replica that reports an error. Never an error section: the
 * deployment still serves, and an operator acts on the warnings.
 */
export function checkReplicas(input: ReplicasInput): sdk.ReplicasHealth {
  const warnings: sdk.HealthMessage[] = input.conditions.map((c) => ({
    code: c.key.includes("latency") ? "EREP02" : "EREP01",
    message: `This replica (${input.self.hostname}): ${c.message}.`,
  }));
  for (const { replica: r, mesh } of input.peers) {
    if (r.error) warnings.push({ code: "EREP01", message: `Replica ${r.hostname} (${r.id}) reports: ${r.error}.` });
    if (mesh && !mesh.connected) {
      warnings.push({
        code: "EREP01",
        message: `The relay mesh link to replica ${r.hostname} at ${r.relay_address} is down${mesh.error ? ` (${mesh.error})` : ""}: peers connected to it cannot reach peers connected here.`,
      });
    }
  }
  const peers = input.peers.map(({ replica: r, latency_ms, error, mesh }): sdk.ReplicaPeerHealth => ({
    id: r.id,
    hostname: r.hostname,
    relay_address: r.relay_address,
    ...(latency_ms !== undefined ? { latency_ms: round(latency_ms) } : {}),
    ...(error ? { error } : {}),
    ...(mesh ? { mesh } : {}),
  }));
  const withErrors = [input.self, ...input.peers.map((p) => p.replica)].filter((r) => r.error);
  return settle({ self: input.self, peers, replicas_with_errors: withErrors, latency_threshold_ms: input.latencyThresholdMs, warnings });
}
