// Templates for tests: written to a directory, packed and pushed through the API.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { onTestFinished } from "vitest";
import { packDirectory } from "../../src/archive/index.js";
import type { Client, Template, TemplateVersion } from "../../src/codersdk/index.js";
import { EXAMPLE_TEMPLATE } from "../../src/provisioners/index.js";

export function writeTemplateDir(files: Record<string, string> = EXAMPLE_TEMPLATE, opts: { cleanup?: boolean } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "coder-template-"));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  if (opts.cleanup !== false) onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Follows the import's logs to its end and returns the version as it ended. */
export async function waitForImport(client: Client, versionId: string): Promise<TemplateVersion> {
  for await (const _ of client.followTemplateVersionLogs(versionId)) {
    // drain: the stream closes when the job ends
  }
  return client.templateVersion(versionId);
}

export async function pushTemplate(
  client: Client,
  name: string,
  files: Record<string, string> = EXAMPLE_TEMPLATE,
  opts: { tags?: Record<string, string>; org?: string; outsideTest?: boolean } = {},
): Promise<{ template: Template; version: TemplateVersion }> {
  const dir = writeTemplateDir(files, { cleanup: !opts.outsideTest });
  const archive = await packDirectory(dir);
  if (opts.outsideTest) rmSync(dir, { recursive: true, force: true });
  const { id } = await client.uploadFile(archive);
  const created = await client.createTemplateVersion(opts.org ?? "default", { file_id: id, tags: opts.tags });
  const version = await waitForImport(client, created.id);
  if (version.job.status !== "succeeded") throw new Error(`template import ${version.job.status}: ${version.job.error}`);
  const template = await client.createTemplate(opts.org ?? "default", { name, template_version_id: version.id });
  return { template, version };
}

/** Follows a build's logs to the end; returns the build as it ended. */
export async function waitForBuild(client: Client, buildId: string) {
  for await (const _ of client.followWorkspaceBuildLogs(buildId)) {
    // drain
  }
  return client.workspaceBuild(buildId);
}
