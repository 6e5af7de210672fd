// Process logs: human-readable lines by default, JSON with --log-json. Secrets that could reach
// a log through an object (tokens, passwords, cookies) are censored by path.
import { createWriteStream } from "node:fs";
import pino, { type DestinationStream, type Logger } from "pino";
import pretty from "pino-pretty";

export type { Logger };

export interface LoggingOptions {
  /** File for human-readable lines ("" for none). */
  human: string;
  /** File for JSON lines ("" for none). */
  json: string;
  verbose: boolean;
  name?: string;
}

const REDACT = [
  "password",
  "old_password",
  "session_token",
  "token",
  "key",
  "*.password",
  "*.session_token",
  "*.token",
  'req.headers["coder-session-token"]',
  "req.headers.cookie",
  "req.headers.authorization",
];

function open(path: string): DestinationStream {
  if (path === "/dev/stderr") return pino.destination({ fd: 2, sync: false });
  if (path === "/dev/stdout") return pino.destination({ fd: 1, sync: false });
  return createWriteStream(path, { flags: "a" });
}

export function createLogger(opts: LoggingOptions): Logger {
  const streams: pino.StreamEntry[] = [];
  if (opts.json) streams.push({ stream: open(opts.json) });
  // The same file gets one format: JSON wins, as the operator asked for machine output.
  if (opts.human && opts.human !== opts.json) {
    streams.push({
      stream: pretty({
        destination: open(opts.human),
        colorize: false,
        singleLine: true,
        translateTime: "SYS:yyyy-mm-dd HH:MM:ss.l",
        ignore: "pid,hostname",
        sync: false,
      }),
    });
  }
  const level = opts.verbose ? "debug" : "info";
  return pino(
    { name: opts.name ?? "coderd", level, redact: { paths: REDACT, censor: "[REDACTED]" }, base: undefined },
    streams.length ? pino.multistream(streams.map((s) => ({ ...s, level }))) : pino.destination("/dev/null"),
  );
}
