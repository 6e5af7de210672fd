import { randomBytes } from "node:crypto";
import type { Command } from "commander";
import type { User } from "../../codersdk/index.js";
import { CliError } from "../errors.js";
import { outputFormat, render, shortTime, type Column } from "../output.js";
import { authenticatedClient, type GlobalOptions } from "../session.js";

const columns: Column<User>[] = [
  { header: "USERNAME", value: (u) => u.username },
  { header: "EMAIL", value: (u) => u.email },
  { header: "CREATED AT", value: (u) => shortTime(u.created_at) },
  { header: "STATUS", value: (u) => u.status },
  { header: "ROLES", value: (u) => u.roles.map((r) => r.name).join(",") || "member" },
];

export async function list(globals: GlobalOptions, cmd: Command): Promise<void> {
  const o = cmd.opts() as { search?: string; limit: string; output?: string };
  const format = outputFormat(o.output);
  const limit = Number(o.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new CliError(`--limit must be a positive integer, not "${o.limit}"`);
  const res = await authenticatedClient(globals).users({ q: o.search, limit });
  process.stdout.write(render(format, res.users, columns));
}

export async function show(globals: GlobalOptions, cmd: Command, user: string): Promise<void> {
  const format = outputFormat(cmd.opts().output);
  process.stdout.write(render(format, await authenticatedClient(globals).user(user), columns));
}

export async function create(globals: GlobalOptions, cmd: Command): Promise<void> {
  const o = cmd.opts() as { email: string; username: string; fullName?: string; password?: string; loginType: string; output?: string };
  const format = outputFormat(o.output);
  if (o.loginType !== "password" && o.loginType !== "none") throw new CliError(`--login-type must be "password" or "none", not "${o.loginType}"`);
  const generated = o.loginType === "password" && !o.password ? randomBytes(12).toString("base64url") : undefined;
  const user = await authenticatedClient(globals).createUser({
    email: o.email,
    username: o.username,
    name: o.fullName,
    login_type: o.loginType,
    password: o.password ?? generated,
  });
  if (format === "json") {
    process.stdout.write(JSON.stringify(generated ? { ...user, password: generated } : user, null, 2) + "\n");
    return;
  }
  process.stdout.write(`User ${user.username} created.\n`);
  if (generated) process.stdout.write(`Password: ${generated}\nShare it with the user and ask them to change it.\n`);
}

async function setStatus(globals: GlobalOptions, user: string, verb: "suspend" | "activate"): Promise<void> {
  const updated = await authenticatedClient(globals).updateUserStatus(user, verb);
  process.stdout.write(`User ${updated.username} is now ${updated.status}.\n`);
}

export const suspend = (g: GlobalOptions, _cmd: Command, user: string) => setStatus(g, user, "suspend");
export const activate = (g: GlobalOptions, _cmd: Command, user: string) => setStatus(g, user, "activate");
