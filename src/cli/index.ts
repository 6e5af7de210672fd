// The `coder` command tree. Each command's module is imported only when it runs, so a command
// pays only for what it uses (OpenSSH starts `coder ssh --stdio` for every connection).
import { Command, CommanderError, Option } from "commander";
import { defaultConfigDir, serverOptions } from "../codersdk/deployment.js";
import type { GlobalOptions } from "./session.js";

type Action = (globals: GlobalOptions, cmd: Command, ...args: string[]) => Promise<void>;

function lazy(load: () => Promise<{ run: Action }>) {
  return async (...args: unknown[]) => {
    const cmd = args.at(-1) as Command;
    const positional = args.slice(0, -2).filter((a): a is string => typeof a === "string");
    const globals = cmd.optsWithGlobals() as GlobalOptions;
    await (await load()).run(globals, cmd, ...positional);
  };
}

/** Flags come from the deployment option table, so help, environment and validation agree. */
function addServerOptions(cmd: Command): void {
  for (const o of serverOptions) {
    if (o.key === "configDir") continue; // the global --config-dir
    const value = o.bareValue !== undefined || o.kind === "bool" ? "[value]" : "<value>";
    const dflt = o.default ? `, default: ${o.default}` : "";
    cmd.option(`--${o.flag} ${value}`, `${o.description} (env: ${o.env}${dflt})`);
  }
}

const output = () => new Option("-o, --output <format>", "output format: table or json").default("table");

export function buildProgram(): Command {
  const program = new Command("coder")
    .description("Self-hosted remote development environments.")
    .option("--url <url>", "URL of the deployment (env: CODER_URL)")
    .option("--token <token>", "session token (env: CODER_SESSION_TOKEN)")
    .option("--config-dir <path>", "directory for CLI state and the built-in database (env: CODER_CONFIG_DIR)", process.env.CODER_CONFIG_DIR || defaultConfigDir())
    .showHelpAfterError()
    .exitOverride();

  const server = program.command("server").description("Start a Coder server.");
  addServerOptions(server);
  server.action(lazy(() => import("./commands/server.js")));

  program
    .command("login")
    .argument("[url]", "URL of the deployment")
    .description("Authenticate with a Coder deployment (creates the first user on a new deployment).")
    .option("--first-user-username <name>", "username of the first user (env: CODER_FIRST_USER_USERNAME)")
    .option("--first-user-email <email>", "email of the first user (env: CODER_FIRST_USER_EMAIL)")
    .option("--first-user-password <password>", "password of the first user (env: CODER_FIRST_USER_PASSWORD)")
    .option("--first-user-full-name <name>", "full name of the first user (env: CODER_FIRST_USER_FULL_NAME)")
    .option("--email <email>", "log in with this email (env: CODER_EMAIL)")
    .option("--password <password>", "log in with this password (env: CODER_PASSWORD)")
    .action(lazy(() => import("./commands/login.js")));

  program.command("logout").description("Remove the local session and end it on the server.").action(lazy(() => import("./commands/logout.js")));
  program.command("whoami").description("Show the deployment and user you are logged in as.").addOption(output()).action(lazy(() => import("./commands/whoami.js")));

  const users = program.command("users").description("Manage users.");
  users
    .command("list")
    .alias("ls")
    .description("List users.")
    .option("--search <query>", 'filter: free text and key:value terms, e.g. "status:active role:owner"')
    .option("--limit <n>", "at most this many users", "100")
    .addOption(output())
    .action(lazy(() => import("./commands/users.js").then((m) => ({ run: m.list }))));
  users
    .command("create")
    .description("Create a user.")
    .requiredOption("-e, --email <email>", "email address")
    .requiredOption("-u, --username <username>", "username")
    .option("-n, --full-name <name>", "full name")
    .option("-p, --password <password>", "password (generated and printed when omitted)")
    .option("--login-type <type>", "password or none", "password")
    .addOption(output())
    .action(lazy(() => import("./commands/users.js").then((m) => ({ run: m.create }))));
  users
    .command("show")
    .argument("<user>", 'username, id or "me"')
    .description("Show a user.")
    .addOption(output())
    .action(lazy(() => import("./commands/users.js").then((m) => ({ run: m.show }))));
  for (const verb of ["suspend", "activate"] as const) {
    users
      .command(verb)
      .argument("<user>", "username or id")
      .description(verb === "suspend" ? "Suspend a user: their sessions and tokens stop working at once." : "Reactivate a suspended user.")
      .action(lazy(() => import("./commands/users.js").then((m) => ({ run: m[verb] }))));
  }

  const tokens = program.command("tokens").description("Manage personal API tokens.");
  tokens
    .command("create")
    .description("Create a token and print it.")
    .option("--name <name>", "token name")
    .option("--lifetime <duration>", "token lifetime, e.g. 30d or 720h (default: the deployment's maximum)")
    .option("--user <user>", "create the token for this user (owners only)", "me")
    .action(lazy(() => import("./commands/tokens.js").then((m) => ({ run: m.create }))));
  tokens
    .command("list")
    .alias("ls")
    .description("List tokens.")
    .option("--user <user>", "list this user's tokens", "me")
    .addOption(output())
    .action(lazy(() => import("./commands/tokens.js").then((m) => ({ run: m.list }))));
  tokens
    .command("remove")
    .alias("rm")
    .argument("<name|id>", "token name or id")
    .option("--user <user>", "the token's owner", "me")
    .description("Delete a token.")
    .action(lazy(() => import("./commands/tokens.js").then((m) => ({ run: m.remove }))));

  const collect = (v: string, prev: string[] = []) => [...prev, v];
  const org = () => new Option("--org, --organization <org>", "organization").default("default");
  const templatesModule = (name: "init" | "push" | "list" | "versions" | "remove") => lazy(() => import("./commands/templates.js").then((m) => ({ run: m[name] })));
  const templates = program.command("templates").alias("template").description("Manage templates.");
  templates
    .command("init")
    .argument("[dir]", "directory to write the example template into", ".")
    .description("Write an example template to start from.")
    .option("--force", "write into a directory that is not empty (overwrites the example's files)")
    .action(templatesModule("init"));
  templates
    .command("push")
    .argument("[name]", "template name (default: the directory's name)")
    .description("Upload a template directory as a new template or a new version of one, streaming the import's logs.")
    .option("-d, --directory <dir>", "the template directory", ".")
    .option("--name <version>", "name of the new version (default: generated)")
    .option("-m, --message <text>", "a message describing the version")
    .option("--provisioner-tag <key=value>", "a tag the import and builds need a provisioner daemon to have (repeatable)", collect)
    .option("--activate", "make the new version the active one", true)
    .option("--no-activate", "keep the current active version")
    .option("-y, --yes", "do not ask for confirmation")
    .addOption(org())
    .action(templatesModule("push"));
  templates.command("list").alias("ls").description("List templates.").addOption(org()).addOption(output()).action(templatesModule("list"));
  const versions = templates.command("versions").description("Manage a template's versions.");
  versions
    .command("list")
    .alias("ls")
    .argument("<template>", "template name")
    .description("List a template's versions.")
    .addOption(org())
    .addOption(output())
    .action(templatesModule("versions"));
  templates
    .command("delete")
    .alias("rm")
    .argument("<name...>", "template names")
    .description("Delete templates (only templates without workspaces).")
    .option("-y, --yes", "do not ask for confirmation")
    .addOption(org())
    .action(templatesModule("remove"));

  const workspacesModule = (name: "create" | "start" | "stop" | "remove" | "list" | "show" | "logs") => lazy(() => import("./commands/workspaces.js").then((m) => ({ run: m[name] })));
  const parameter = () => new Option("--parameter <name=value>", "a rich parameter value (repeatable)").argParser(collect);
  program
    .command("create")
    .argument("<workspace>", "workspace name, or <owner>/<name> to create it for another user")
    .description("Create a workspace from a template and stream its first build's logs.")
    .option("-t, --template <name>", "template to create the workspace from")
    .addOption(parameter())
    .option("-y, --yes", "do not ask for confirmation")
    .addOption(org())
    .action(workspacesModule("create"));
  program
    .command("start")
    .argument("<workspace>", "<name> or <owner>/<name>")
    .description("Start a workspace.")
    .addOption(parameter())
    .option("-y, --yes", "do not ask for confirmation")
    .action(workspacesModule("start"));
  program
    .command("stop")
    .argument("<workspace>", "<name> or <owner>/<name>")
    .description("Stop a workspace.")
    .option("-y, --yes", "do not ask for confirmation")
    .action(workspacesModule("stop"));
  program
    .command("delete")
    .alias("rm")
    .argument("<workspace>", "<name> or <owner>/<name>")
    .description("Delete a workspace: its resources, files and processes.")
    .option("-y, --yes", "do not ask for confirmation")
    .action(workspacesModule("remove"));
  program
    .command("list")
    .alias("ls")
    .description("List workspaces (yours, unless --all or --search says otherwise).")
    .option("-a, --all", "every workspace you can see, not only yours")
    .option("--search <query>", 'filter, e.g. "owner:alice template:docker status:running" (default: "owner:me")')
    .addOption(output())
    .action(workspacesModule("list"));
  program
    .command("show")
    .argument("<workspace>", "<name> or <owner>/<name>")
    .description("Show a workspace: its latest build, resources, agents and apps.")
    .addOption(output())
    .action(workspacesModule("show"));

  program
    .command("logs")
    .argument("<workspace>", "<name> or <owner>/<name>")
    .description("Show the workspace agents' logs (startup and shutdown scripts).")
    .option("-f, --follow", "keep streaming new lines (until the agent is off, or Ctrl-C)")
    .option("--agent <name>", "only this agent")
    .action(workspacesModule("logs"));

  program
    .command("ssh")
    .argument("<workspace>", "<workspace>[.<agent>] or <owner>/<workspace>[.<agent>]")
    .argument("[command...]", "run this command instead of a login shell (exits with its status); put it after --")
    .description("Start an SSH session with a workspace over its encrypted tunnel.")
    .option("--stdio", "carry the SSH stream on stdin/stdout (for OpenSSH's ProxyCommand)")
    .option("-A, --forward-agent", "forward the local SSH agent (SSH_AUTH_SOCK)")
    .option("-R, --remote-forward <spec>", "[bind:]remote_port:local_host:local_port (repeatable)", collect)
    .option("-e, --env <NAME=value>", "set a variable in the session (repeatable)", collect)
    .option("--no-wait", "do not wait for the agent to connect and finish starting")
    .action(lazy(() => import("./commands/ssh.js")));

  program
    .command("port-forward")
    .alias("tunnel")
    .argument("<workspace>", "<workspace>[.<agent>] or <owner>/<workspace>[.<agent>]")
    .description("Forward local TCP ports to ports inside a workspace over its encrypted tunnel, until Ctrl-C.")
    .option("--tcp <spec>", "[bind:]local:remote, e.g. 8080:80, 127.0.0.1:8080:80 or 8000-8005:9000-9005; comma-separated or repeated", collect)
    .action(lazy(() => import("./commands/port-forward.js")));

  program
    .command("speedtest")
    .argument("<workspace>", "<workspace>[.<agent>] or <owner>/<workspace>[.<agent>]")
    .description("Measure the latency and throughput between you and a workspace.")
    .option("-t, --time <duration>", "how long the throughput test runs (100ms to 1m)", "5s")
    .option("--direction <direction>", "down (workspace to you) or up (you to workspace)", "down")
    .addOption(output())
    .action(lazy(() => import("./commands/speedtest.js")));

  program
    .command("ping")
    .argument("<workspace>", "<workspace>[.<agent>] or <owner>/<workspace>[.<agent>]")
    .description("Ping a workspace's agent over its tunnel and show which path (direct or relay) each round trip took.")
    .option("-n, --num <n>", "how many pings (0: until Ctrl-C)", "10")
    .option("-t, --timeout <duration>", "how long to wait for each pong", "5s")
    .option("--wait <duration>", "pause between pings", "1s")
    .action(lazy(() => import("./commands/ping.js")));

  program
    .command("config-ssh")
    .description("Add a Host entry per workspace to ~/.ssh/config (ssh coder.<workspace>), in a managed block.")
    .option("--ssh-config-file <path>", "the SSH config to change (env: CODER_SSH_CONFIG_FILE, default: ~/.ssh/config)")
    .option("-o, --ssh-option <option>", 'an extra option for each host, e.g. "ForwardAgent yes" (repeatable)', collect)
    .option("--ssh-host-prefix <prefix>", "prefix of the Host aliases", "coder.")
    .option("-n, --dry-run", "print the config that would be written, change nothing")
    .option("--remove", "remove the managed block")
    .option("-y, --yes", "do not ask for confirmation")
    .action(lazy(() => import("./commands/config-ssh.js")));

  const provisioner = program.command("provisioner").description("Run and inspect provisioner daemons.");
  provisioner
    .command("start")
    .description("Run an external provisioner daemon (SIGHUP/SIGTERM: finish the current job and exit; SIGINT: cancel it and exit).")
    .option("--name <name>", "daemon name (default: hostname-pid)")
    .option("-t, --tag <key=value>", "a tag; jobs run here only if all their tags match (repeatable)", (v: string, prev: string[] = []) => [...prev, v])
    .option("--psk <key>", "pre-shared key (env: CODER_PROVISIONER_DAEMON_PSK)")
    .option("--org, --organization <org>", "organization to serve", "default")
    .option("--cache-dir <dir>", "work directories and local workspaces (env: CODER_CACHE_DIRECTORY)")
    .option("-v, --verbose", "debug logs")
    .option("--prometheus-enable [value]", "serve this daemon's Prometheus metrics at /metrics on --prometheus-address (env: CODER_PROMETHEUS_ENABLE, default: false)")
    .option("--prometheus-address <value>", "address of the metrics endpoint (env: CODER_PROMETHEUS_ADDRESS, default: 127.0.0.1:2112)")
    .action(lazy(() => import("./commands/provisioner.js").then((m) => ({ run: m.start }))));
  provisioner
    .command("list")
    .alias("ls")
    .description("List provisioner daemons.")
    .option("--org, --organization <org>", "organization", "default")
    .addOption(output())
    .action(lazy(() => import("./commands/provisioner.js").then((m) => ({ run: m.list }))));

  program
    .command("health")
    .description("Show the deployment's health report: access URL, database, relays, WebSockets, provisioner daemons (owners only; exits 1 on error).")
    .option("--force", "recompute now instead of showing the cached report")
    .addOption(output())
    .action(lazy(() => import("./commands/health.js")));

  const support = program.command("support").description("Commands for troubleshooting with Coder support.");
  support
    .command("bundle")
    .argument("[workspace]", "also collect this workspace's build logs, agent and agent logs: <name>, <owner>/<name> or <workspace>.<agent>")
    .description("Write a zip of diagnostics (build info, health report, replicas, relays, and a workspace's logs) to attach to a support request (owners only; never includes your session token).")
    .option("-O, --output-file <path>", "where to write the zip (default: coder-support-<unix time>.zip in the current directory)")
    .option("-y, --yes", "do not ask for confirmation")
    .action(lazy(() => import("./commands/support.js").then((m) => ({ run: m.bundle }))));
  support.allowExcessArguments().action(() => {
    if (support.args.length) support.error(`error: unknown command '${support.args[0]}'`);
    support.help();
  });

  program
    .command("agent")
    .description("Run the workspace agent (started by a workspace's provisioner; reads CODER_AGENT_URL and CODER_AGENT_TOKEN).")
    .action(lazy(() => import("./commands/agent.js")));

  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed its message (or help/version output).
      process.exitCode = err.exitCode;
      return;
    }
    const { describeError } = await import("./describe-error.js");
    process.stderr.write(`error: ${describeError(err)}\n`);
    process.exitCode = 1;
  }
}
