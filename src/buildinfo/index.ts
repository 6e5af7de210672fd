// Version and commit of this build. `npm run build` writes dist/buildinfo.json; running from
// source (tests) falls back to package.json and "development".
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { nodeFlags } from "./node-flags.js";

export { nodeFlags };

export interface Build {
  version: string;
  commit: string;
}

function load(): Build {
  const generated = new URL("../buildinfo.json", import.meta.url);
  if (existsSync(generated)) return JSON.parse(readFileSync(generated, "utf8")) as Build;
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return { version: `v${pkg.version}-devel`, commit: "development" };
}

export const build: Build = load();

/** Where this build is installed (package.json, bin/, dist/, node_modules/). */
export const coderInstallRoot: string = fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "");


const coderBin = fileURLToPath(new URL("../../bin/coder.js", import.meta.url));

/** How to run this build's `coder` binary (for processes it starts, such as workspace agents). */
export const coderCommand: readonly string[] = [process.execPath, ...nodeFlags, coderBin];

/**
 * How OpenSSH's ProxyCommand runs `coder ssh --stdio`: without nodeFlags. V8 heap flags make
 * Node's built-in modules compile without their embedded code cache (its flag hash no longer
 * matches), ~50 ms more to start on every `ssh coder.<workspace>`, while this process's throughput
 * is set by the SSH server at the far end: scp moved ~480 Mbit/s through it with and without.
 */
export const proxyCommand: readonly string[] = [process.execPath, coderBin];
