// One embedded Postgres for the whole run, and a migrated template database that each test
// clones into a database of its own (CREATE DATABASE … TEMPLATE is a file copy: fast).
import { chmodSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { migrate, startEmbedded } from "../src/database/index.js";

declare module "vitest" {
  export interface ProvidedContext {
    pgAdminUrl: string;
    pgTemplate: string;
  }
}

export const TEMPLATE_DB = "coder_test_template";

/** Test servers keep their workspaces under this run's directory (see startTestServer). */
const RUN_DIR_PREFIX = "coder-test-run-";

/**
 * Workspace agents run detached, so a test that forgets to delete its workspace leaves them
 * behind: stop those of this run (they point at a test server on loopback) and say which, but
 * never those of another test run going on at the same time on this machine.
 */
function killLeakedAgents(runDir: string): void {
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (cmdline[cmdline.length - 2] !== "agent" || !cmdline.some((a) => a.endsWith("bin/coder.js"))) continue;
      const environ = readFileSync(`/proc/${pid}/environ`, "utf8");
      if (!environ.includes("CODER_AGENT_URL=http://127.0.0.1")) continue;
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      // This run's, and strays of tests that kept no run dir; never another run's or a benchmark's.
      if ((cwd.includes(RUN_DIR_PREFIX) && !cwd.startsWith(runDir)) || cwd.includes("coder-bench-")) continue;
      process.kill(Number(pid), "SIGKILL");
      console.warn(`global teardown: killed workspace agent ${pid} that a test left running`);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
}

export default async function setup(project: TestProject) {
  // Inherited by the test workers, which put test servers' cache dirs here.
  const runDir = mkdtempSync(join(tmpdir(), RUN_DIR_PREFIX));
  chmodSync(runDir, 0o755); // config dirs inside hold the built-in Postgres of server processes
  process.env.CODER_TEST_RUN_DIR = runDir;
  const dir = mkdtempSync(join(tmpdir(), "coder-test-pg-"));
  chmodSync(dir, 0o755); // readable by the postgres user when the suite runs as root
  const instance = await startEmbedded({ dir });
  const admin = new pg.Client({ connectionString: instance.url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${TEMPLATE_DB}`);
  await admin.end();
  const pool = new pg.Pool({ connectionString: instance.url.replace("/postgres?", `/${TEMPLATE_DB}?`) });
  await migrate(pool);
  await pool.end();
  project.provide("pgAdminUrl", instance.url);
  project.provide("pgTemplate", TEMPLATE_DB);
  return async () => {
    killLeakedAgents(runDir);
    await instance.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(runDir, { recursive: true, force: true });
  };
}
