import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import { packDirectory } from "../../archive/index.js";
import { isCoderSDKError, type Client, type Template, type TemplateVersion } from "../../codersdk/index.js";
import { EXAMPLE_TEMPLATE } from "../../provisioners/local/example.js";
import { followTemplateVersion, jobSucceeded } from "../build-logs.js";
import { CliError } from "../errors.js";
import { confirm, parseKeyValues } from "../flags.js";
import { outputFormat, render, shortTime, type Column } from "../output.js";
import { authenticatedClient, type GlobalOptions } from "../session.js";

const shellWord = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

export async function init(_globals: GlobalOptions, cmd: Command, dir = "."): Promise<void> {
  const o = cmd.opts() as { force?: boolean };
  const target = resolve(dir);
  if (existsSync(target)) {
    if (!statSync(target).isDirectory()) throw new CliError(`${dir} exists and is not a directory`);
    if (readdirSync(target).length && !o.force) throw new CliError(`${dir} is not empty: pass --force to write the example template into it anyway`);
  }
  for (const [name, text] of Object.entries(EXAMPLE_TEMPLATE)) {
    mkdirSync(dirname(join(target, name)), { recursive: true });
    writeFileSync(join(target, name), text);
  }
  const files = Object.keys(EXAMPLE_TEMPLATE).map((f) => `  ${f}\n`).join("");
  const suggested = basename(target).toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 32).replace(/-+$/, "") || "my-template";
  process.stdout.write(
    `Wrote the example template to ${target}:\n${files}\nNext steps:\n` +
      `  1. Edit template.yaml (parameters, agents, apps).\n` +
      `  2. Push it: coder templates push ${suggested} -d ${shellWord(dir)}\n` +
      `  3. Create a workspace: coder create my-workspace --template ${suggested}\n`,
  );
}

async function findTemplate(client: Client, org: string, name: string): Promise<Template | undefined> {
  try {
    return await client.templateByName(org, name);
  } catch (err) {
    if (isCoderSDKError(err, 404)) return undefined;
    throw err;
  }
}

async function templateNamed(client: Client, org: string, name: string): Promise<Template> {
  const t = await findTemplate(client, org, name);
  if (!t) throw new CliError(`No template named "${name}" in organization "${org}".`);
  return t;
}

/** Left out of the archive at any depth. */
const IGNORED = new Set([".git", "node_modules"]);

export async function push(globals: GlobalOptions, cmd: Command, nameArg?: string): Promise<void> {
  const o = cmd.opts() as { directory: string; name?: string; message?: string; provisionerTag?: string[]; activate: boolean; yes?: boolean; organization: string };
  const dir = resolve(o.directory);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new CliError(`${o.directory} is not a directory`);
  const name = nameArg ?? basename(dir);
  // The server's rule for names, checked before an import that would be wasted.
  if (!/^[a-zA-Z0-9]+(?:-[a-zA-Z0-9]+)*$/.test(name) || name.length > 32) {
    const why = `"${name}" is not a valid template name (letters, digits and single hyphens, at most 32 characters)`;
    throw new CliError(nameArg ? why : `${why}: pass one, e.g. coder templates push my-template -d ${shellWord(o.directory)}`);
  }
  const tags = Object.fromEntries(parseKeyValues(o.provisionerTag, "--provisioner-tag").map((t) => [t.name, t.value]));
  const client = authenticatedClient(globals);
  const existing = await findTemplate(client, o.organization, name);

  await confirm(existing ? `Upload ${dir} as a new version of template "${name}"?` : `Upload ${dir} as the new template "${name}"?`, {
    yes: o.yes,
    action: "Pushing",
  });
  const archive = await packDirectory(dir, { ignore: (rel) => IGNORED.has(rel.slice(rel.lastIndexOf("/") + 1)) });
  const file = await client.uploadFile(archive);
  process.stdout.write(`Uploaded ${dir} (${archive.length} bytes).\n`);
  const created = await client.createTemplateVersion(o.organization, {
    file_id: file.id,
    template_id: existing?.id,
    name: o.name,
    message: o.message,
    tags: Object.keys(tags).length ? tags : undefined,
  });
  const version = await followTemplateVersion(client, created);
  if (!jobSucceeded(version.job)) throw new CliError(`Template import ${version.job.status}: ${version.job.error ?? "no error was reported"}`);

  if (!existing) {
    await client.createTemplate(o.organization, { name, template_version_id: version.id });
    process.stdout.write(`Template "${name}" created at version ${version.name}.\n`);
  } else if (o.activate) {
    await client.promoteTemplateVersion(existing.id, version.id);
    process.stdout.write(`Updated version of "${name}": ${version.name} is now active.\n`);
  } else {
    process.stdout.write(`Created version ${version.name} of "${name}"; the active version is unchanged (--no-activate).\n`);
  }
}

export async function list(globals: GlobalOptions, cmd: Command): Promise<void> {
  const o = cmd.opts() as { organization: string; output?: string };
  const format = outputFormat(o.output);
  const client = authenticatedClient(globals);
  const templates = await client.templates(o.organization);
  if (format === "json") {
    process.stdout.write(render(format, templates, []));
    return;
  }
  if (!templates.length) {
    process.stderr.write(`No templates found in organization "${o.organization}". Create one:\n  coder templates init my-template && coder templates push my-template -d my-template\n`);
    return;
  }
  const active = new Map(await Promise.all(templates.map(async (t) => [t.id, (await client.templateVersion(t.active_version_id)).name] as const)));
  const columns: Column<Template>[] = [
    { header: "NAME", value: (t) => t.name },
    { header: "DISPLAY NAME", value: (t) => t.display_name },
    { header: "ACTIVE VERSION", value: (t) => active.get(t.id) ?? t.active_version_id },
    { header: "CREATED AT", value: (t) => shortTime(t.created_at) },
    { header: "UPDATED AT", value: (t) => shortTime(t.updated_at) },
  ];
  process.stdout.write(render(format, templates, columns));
}

export async function versions(globals: GlobalOptions, cmd: Command, templateName: string): Promise<void> {
  const o = cmd.opts() as { organization: string; output?: string };
  const format = outputFormat(o.output);
  const client = authenticatedClient(globals);
  const template = await templateNamed(client, o.organization, templateName);
  const list = await client.templateVersions(template.id);
  const columns: Column<TemplateVersion>[] = [
    { header: "NAME", value: (v) => v.name },
    { header: "CREATED AT", value: (v) => shortTime(v.created_at) },
    { header: "STATUS", value: (v) => v.job.status },
    { header: "ACTIVE", value: (v) => (v.id === template.active_version_id ? "Active" : "") },
    { header: "MESSAGE", value: (v) => v.message.split("\n")[0] ?? "" },
  ];
  process.stdout.write(render(format, list, columns));
}

export async function remove(globals: GlobalOptions, cmd: Command): Promise<void> {
  const o = cmd.opts() as { yes?: boolean; organization: string };
  // Variadic: commander hands the names over as one array.
  const names = (cmd.processedArgs[0] as string[] | undefined) ?? [];
  const client = authenticatedClient(globals);
  const templates = await Promise.all(names.map((n) => templateNamed(client, o.organization, n)));
  await confirm(`Delete template${names.length > 1 ? "s" : ""} ${names.map((n) => `"${n}"`).join(", ")}?`, {
    yes: o.yes,
    required: true,
    action: "Deleting a template",
  });
  for (const t of templates) {
    try {
      await client.deleteTemplate(t.id);
    } catch (err) {
      if (isCoderSDKError(err)) throw new CliError(`Cannot delete template "${t.name}": ${err.friendly()}`);
      throw err;
    }
    process.stdout.write(`Deleted template "${t.name}".\n`);
  }
}
