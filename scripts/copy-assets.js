// Runs after tsc: ships what tsc does not emit (SQL migrations) and stamps the build.
import { execFileSync } from "node:child_process";
import { cpSync, readFileSync, rmSync, writeFileSync } from "node:fs";

rmSync("dist/database/migrations", { recursive: true, force: true });
cpSync("src/database/migrations", "dist/database/migrations", { recursive: true });

const { version } = JSON.parse(readFileSync("package.json", "utf8"));
let commit = process.env.CODER_BUILD_COMMIT ?? "";
if (!commit) {
  try {
    commit = execFileSync("git", ["rev-parse", "HEAD"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    commit = "unknown";
  }
}
writeFileSync("dist/buildinfo.json", JSON.stringify({ version: `v${version}`, commit }));
