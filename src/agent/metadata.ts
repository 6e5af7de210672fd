// Metadata: each item a command run on its own interval with a timeout; its output (or its
// error) is the item's value.
import { runScript } from "./script.js";

export interface MetadataItem {
  key: string;
  script: string;
  interval: number;
  timeout: number;
}

export interface MetadataValue {
  value: string;
  error: string;
  collected_at: string;
}

const MAX_VALUE = 4096;

export function collectMetadata(
  items: MetadataItem[],
  opts: { cwd: string; env: Record<string, string>; onValue: (key: string, v: MetadataValue) => void },
): () => void {
  // One pending timer per item, replaced each round.
  const timers: Array<NodeJS.Timeout | undefined> = [];
  let stopped = false;
  for (const [i, item] of items.entries()) {
    const once = async () => {
      let out = "";
      let err = "";
      const { result, code } = await runScript(item.script, {
        cwd: opts.cwd,
        env: opts.env,
        timeoutSeconds: item.timeout,
        onLine: (line, stream) => {
          if (stream === "stdout") out += (out ? "\n" : "") + line;
          else err += (err ? "\n" : "") + line;
        },
      });
      if (stopped) return;
      const error = result === "timeout" ? `timed out after ${item.timeout}s` : result === "error" ? err || `exited with code ${code}` : "";
      opts.onValue(item.key, { value: out.trim().slice(0, MAX_VALUE), error: error.slice(0, MAX_VALUE), collected_at: new Date().toISOString() });
    };
    const loop = () => {
      void once().finally(() => {
        if (!stopped) timers[i] = setTimeout(loop, item.interval * 1000);
      });
    };
    loop();
  }
  return () => {
    stopped = true;
    for (const t of timers) if (t) clearTimeout(t);
  };
}
