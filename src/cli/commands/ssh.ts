// `coder ssh <workspace>[.<agent>] [command...]`: an SSH session with the workspace over the
// encrypted tunnel. With --stdio the raw SSH stream goes to stdin/stdout for OpenSSH's
// ProxyCommand (what `coder config-ssh` sets up); otherwise this is the SSH client itself.
import { connect as tcpConnect } from "node:net";
import type { Duplex } from "node:stream";
import type { Command } from "commander";
import type { ClientChannel } from "ssh2";
import { dialTarget } from "../agent-dial.js";
import { CliError } from "../errors.js";
import type { GlobalOptions } from "../session.js";

interface Options {
  stdio?: boolean;
  forwardAgent?: boolean;
  remoteForward?: string[];
  env?: string[];
  /** false with --no-wait (commander names a negated flag by what it negates). */
  wait?: boolean;
}

export async function run(globals: GlobalOptions, cmd: Command, target: string, ...command: string[]): Promise<void> {
  const o = cmd.opts() as Options;
  const args = (cmd.args as string[]).slice(1);
  const { agent, conn } = await dialTarget(globals, target, { wait: o.wait === false ? "none" : "ready", quiet: o.stdio });
  try {
    const { stream } = await conn.openStream({ service: "ssh" });
    if (o.stdio) await pipeStdio(stream);
    else process.exitCode = await interactive(stream, agent.ssh_host_public_key, args.length ? args : command, o);
  } finally {
    conn.close();
  }
}

/**
 * ProxyCommand mode: bytes only, until either side ends. A failed session is no reason to stop:
 * the stream moves to a working path; only its own failure ends this.
 */
function pipeStdio(stream: Duplex): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.on("error", (err) => reject(new CliError(`lost the connection to the agent: ${err.message}`)));
    process.stdin.pipe(stream);
    stream.pipe(process.stdout);
    stream.on("end", () => resolve());
    process.stdin.on("end", () => stream.end());
  });
}

function parseEnv(pairs: string[] | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const p of pairs ?? []) {
    const i = p.indexOf("=");
    if (i <= 0) throw new CliError(`-e ${p}: use NAME=value`);
    env[p.slice(0, i)] = p.slice(i + 1);
  }
  return env;
}

/** "[bind:]remote_port:local_host:local_port" as OpenSSH's -R takes it. */
function parseRemoteForward(spec: string): { bind: string; port: number; host: string; localPort: number } {
  const parts = spec.split(":");
  if (parts.length === 3) parts.unshift("127.0.0.1");
  const [bind, port, host, localPort] = parts;
  if (parts.length !== 4 || !/^\d+$/.test(port!) || !/^\d+$/.test(localPort!) || !host) throw new CliError(`-R ${spec}: use [bind_address:]port:host:hostport`);
  return { bind: bind!, port: Number(port), host, localPort: Number(localPort) };
}

/** The SSH client: a shell with a PTY (or a command), pinned to the agent's host key; resolves to the exit code. */
async function interactive(stream: Duplex, hostKey: string, command: string[], o: Options): Promise<number> {
  const env = parseEnv(o.env);
  const forwards = (o.remoteForward ?? []).map(parseRemoteForward);
  const expected = hostKey.split(" ")[1];
  // Loaded here, not at the top: OpenSSH starts `coder ssh --stdio` for every connection, and
  // that mode only moves bytes.
  const { default: ssh2 } = await import("ssh2");
  const ssh = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    ssh.once("ready", resolve);
    ssh.once("error", (err) => reject(new CliError(`SSH to the agent failed: ${err.message}`)));
    ssh.connect({
      sock: stream,
      username: process.env.USER || "coder",
      // The tunnel already proved the agent's identity; the SSH host key is checked as well.
      hostVerifier: (key: Buffer) => !expected || key.toString("base64") === expected,
      agent: o.forwardAgent ? process.env.SSH_AUTH_SOCK : undefined,
      agentForward: Boolean(o.forwardAgent && process.env.SSH_AUTH_SOCK),
      readyTimeout: 30_000,
    });
  });
  for (const f of forwards) {
    await new Promise<void>((resolve, reject) => ssh.forwardIn(f.bind, f.port, (err) => (err ? reject(new CliError(`-R ${f.port}: ${err.message}`)) : resolve())));
  }
  ssh.on("tcp connection", (info, accept) => {
    const f = forwards.find((x) => x.port === info.destPort);
    if (!f) return;
    const channel = accept();
    const local = tcpConnect(f.localPort, f.host);
    local.on("error", () => channel.destroy());
    channel.on("error", () => local.destroy());
    local.pipe(channel).pipe(local);
  });
  const tty = process.stdin.isTTY && process.stdout.isTTY;
  const channel = await new Promise<ClientChannel>((resolve, reject) => {
    const done = (err: Error | undefined, ch: ClientChannel) => (err ? reject(new CliError(err.message)) : resolve(ch));
    const pty = tty ? { term: process.env.TERM || "xterm-256color", rows: process.stdout.rows, cols: process.stdout.columns } : false;
    if (command.length) ssh.exec(command.join(" "), { env, pty }, done);
    else ssh.shell(pty || false, { env }, done);
  });
  const onResize = () => channel.setWindow(process.stdout.rows, process.stdout.columns, 0, 0);
  if (tty) {
    process.stdin.setRawMode(true);
    process.stdout.on("resize", onResize);
  }
  process.stdin.pipe(channel);
  channel.pipe(process.stdout);
  channel.stderr.pipe(process.stderr);
  try {
    return await new Promise<number>((resolve, reject) => {
      let code: number | undefined;
      let lost: Error | undefined;
      ssh.on("error", (err) => (lost ??= err));
      channel.on("exit", (c: number | null, signal?: string) => (code = c ?? (signal ? 128 + 1 : 255)));
      const end = () => {
        if (code !== undefined) return resolve(code);
        // The session ended without an exit status: the tunnel (or the agent) went away.
        reject(new CliError(`lost the connection to the agent${lost ? `: ${lost.message}` : ""}`));
      };
      channel.on("close", end);
      ssh.on("close", end);
    });
  } finally {
    if (tty) {
      process.stdin.setRawMode(false);
      process.stdout.off("resize", onResize);
    }
    process.stdin.unpipe(channel);
    process.stdin.pause();
    ssh.end();
  }
}
