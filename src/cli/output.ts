// Output for people (aligned tables) and for machines (-o json).
import { CliError } from "./errors.js";

export type OutputFormat = "table" | "json";

export function outputFormat(value: string | undefined): OutputFormat {
  const v = value ?? "table";
  if (v !== "table" && v !== "json") throw new CliError(`-o/--output must be "table" or "json", not "${v}"`);
  return v;
}

export interface Column<T> {
  header: string;
  value: (row: T) => string;
}

export function table<T>(rows: T[], columns: Column<T>[]): string {
  const cells = rows.map((r) => columns.map((c) => c.value(r)));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => (i === vals.length - 1 ? v : v.padEnd(widths[i]! + 2))).join("").trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join("\n") + "\n";
}

export function render<T>(format: OutputFormat, data: T[] | T, columns: Column<T>[]): string {
  if (format === "json") return JSON.stringify(data, null, 2) + "\n";
  return table(Array.isArray(data) ? data : [data], columns);
}

/** "2026-11-23T03:09:23.000Z" → "2026-11-23 03:09:23" */
export function shortTime(iso: string | null): string {
  return iso ? iso.replace("T", " ").replace(/\.\d+Z$/, "Z").replace(/Z$/, "") : "never";
}
