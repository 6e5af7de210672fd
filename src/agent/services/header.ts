// The header a peer sends first on each stream of a tunnel session: which agent service the rest of
// the stream is for. It comes from the network, so it is validated before anything acts on it.
import { z } from "zod";

const ssh = z.object({ service: z.literal("ssh") });

const pty = z.object({
  service: z.literal("pty"),
  // Ids name PTYs that outlive connections; a tight alphabet keeps them safe to log and compare.
  id: z.string().regex(/^[A-Za-z0-9-]{1,64}$/, "must be 1 to 64 letters, digits or dashes"),
  width: z.number().int().min(1).max(1000),
  height: z.number().int().min(1).max(1000),
  command: z.string().max(4096).optional(),
});

const speedtest = z.object({
  service: z.literal("speedtest"),
  direction: z.enum(["up", "down"]),
  duration_ms: z.number().int().min(100).max(60_000),
});

const tcp = z.object({
  service: z.literal("tcp"),
  port: z.number().int().min(1).max(65_535),
});

// `coder ping`: the agent echoes what it reads, so one byte there and back is one round trip.
const ping = z.object({ service: z.literal("ping") });

export const streamHeaderSchema = z.discriminatedUnion("service", [ssh, pty, speedtest, tcp, ping]);

export type StreamHeader = z.infer<typeof streamHeaderSchema>;
export type PtyHeader = z.infer<typeof pty>;
export type SpeedtestHeader = z.infer<typeof speedtest>;
export type TcpHeader = z.infer<typeof tcp>;
export type ServiceName = StreamHeader["service"];

/** Validates a parsed header; the error names the offending field, e.g. "width: Too big: …". */
export function parseStreamHeader(x: unknown): StreamHeader {
  const result = streamHeaderSchema.safeParse(x);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue && issue.path.length > 0 ? issue.path.join(".") : "header";
  throw new Error(`invalid stream header: ${field}: ${issue?.message ?? "invalid"}`);
}
