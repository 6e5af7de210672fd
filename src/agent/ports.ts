// Listening TCP ports in the workspace, read from /proc/net/tcp and tcp6, for port-forwarding UIs.
import { readFile } from "node:fs/promises";

export interface ListeningPort {
  port: number;
  network: "tcp";
  process_name: string;
}

const LISTEN = "0A";

export function parseProcNetTcp(text: string): number[] {
  const ports: number[] = [];
  for (const line of text.split("\n").slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 4 || cols[3] !== LISTEN) continue;
    const port = Number.parseInt(cols[1]!.split(":")[1] ?? "", 16);
    if (Number.isInteger(port) && port > 0) ports.push(port);
  }
  return ports;
}

export async function listeningPorts(): Promise<ListeningPort[]> {
  const ports = new Set<number>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    try {
      for (const p of parseProcNetTcp(await readFile(file, "utf8"))) ports.add(p);
    } catch {
      // no IPv6 (or no procfs): the other file still counts
    }
  }
  return [...ports].sort((a, b) => a - b).map((port) => ({ port, network: "tcp", process_name: "" }));
}
