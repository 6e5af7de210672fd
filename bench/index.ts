// Runs every benchmark in bench/ one after the other and prints each one's JSON document on its
// own line of stdout (progress goes to stderr). Exits non-zero when a benchmark fails or sees
// non-2xx responses or errors. Use `npm run --silent bench` for stdout without npm's banner.
import { runAgentBenchmark } from "./agent.js";
import { runApiBenchmark } from "./api.js";
import { runHaBenchmark } from "./ha.js";
import { runProvisionBenchmark } from "./provision.js";
import { runTunnelBenchmark } from "./tunnel.js";

interface Benchmark {
  name: string;
  run: () => Promise<{ doc: unknown; ok: boolean }>;
}

const benchmarks: Benchmark[] = [
  { name: "api", run: runApiBenchmark },
  { name: "provision", run: runProvisionBenchmark },
  { name: "agent", run: runAgentBenchmark },
  { name: "tunnel", run: runTunnelBenchmark },
  { name: "ha", run: runHaBenchmark },
];
// BENCH=provision runs one benchmark by name.
const only = process.env.BENCH;

async function main(): Promise<void> {
  for (const b of benchmarks.filter((x) => !only || x.name === only)) {
    try {
      const { doc, ok } = await b.run();
      process.stdout.write(`${JSON.stringify(doc)}\n`);
      if (!ok) {
        process.stderr.write(`[bench] ${b.name}: some requests failed (non-2xx or errors), see its results\n`);
        process.exitCode = 1;
      }
    } catch (err) {
      process.stderr.write(`[bench] ${b.name} failed: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    }
  }
}

await main();
