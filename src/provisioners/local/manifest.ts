// template.yaml of a local template: parameters, agents (scripts, environment, apps, metadata)
// and the isolation to run them with.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import type { ParameterSpec } from "../../provisionerd/proto.js";
import { TemplateError } from "../types.js";

export const MANIFEST_FILE = "template.yaml";

const scalar = z.union([z.string(), z.number(), z.boolean()]).transform((v) => String(v));
const name = z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/i, "must start with a letter and contain only letters, digits, '_' and '-' (at most 64)");

const parameter = z.object({
  name,
  display_name: z.string().max(128).default(""),
  description: z.string().max(4096).default(""),
  type: z.enum(["string", "number", "bool", "list(string)"]).default("string"),
  default: scalar.optional(),
  mutable: z.boolean().default(false),
  required: z.boolean().optional(),
  options: z.array(z.object({ name: z.string(), value: scalar, description: z.string().optional() })).default([]),
  validation: z
    .object({ regex: z.string().optional(), min: z.number().optional(), max: z.number().optional(), error: z.string().default("") })
    .default({ error: "" }),
});

const app = z.object({
  slug: z.string().regex(/^[a-z0-9](-?[a-z0-9])*$/, "must be lowercase letters and digits with single hyphens"),
  display_name: z.string().default(""),
  url: z.string().default(""),
  command: z.string().default(""),
  subdomain: z.boolean().default(false),
  share: z.enum(["owner", "authenticated", "public"]).default("owner"),
  healthcheck: z
    .object({ url: z.string(), interval: z.number().int().positive().default(5), threshold: z.number().int().positive().default(3) })
    .optional(),
});

const agent = z.object({
  name: name.default("main"),
  dir: z.string().default(""),
  env: z.record(z.string(), scalar).default({}),
  startup_script: z.string().default(""),
  startup_script_behavior: z.enum(["blocking", "non-blocking"]).default("non-blocking"),
  startup_script_timeout: z.number().int().nonnegative().default(300),
  shutdown_script: z.string().default(""),
  connection_timeout: z.number().int().nonnegative().default(120),
  metadata: z
    .array(z.object({ key: z.string().min(1), display_name: z.string().default(""), script: z.string().min(1), interval: z.number().int().positive().default(10), timeout: z.number().int().positive().default(5) }))
    .default([]),
  apps: z.array(app).default([]),
});

const manifestSchema = z.object({
  parameters: z.array(parameter).default([]),
  agents: z.array(agent).min(1, "a template needs at least one agent").prefault([{}]),
  isolation: z.enum(["none", "bwrap"]).default("none"),
});

export type Manifest = z.output<typeof manifestSchema>;
export type AgentManifest = Manifest["agents"][number];

export async function readManifest(templateDir: string): Promise<Manifest> {
  let text: string;
  try {
    text = await readFile(join(templateDir, MANIFEST_FILE), "utf8");
  } catch {
    throw new TemplateError(`${MANIFEST_FILE} not found at the top of the template archive`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text) ?? {};
  } catch (err) {
    throw new TemplateError(`${MANIFEST_FILE}: not valid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  const r = manifestSchema.safeParse(doc);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new TemplateError(`${MANIFEST_FILE}: ${i.path.join(".") || "document"}: ${i.message}`);
  }
  const m = r.data;
  const dup = (xs: string[]) => xs.find((x, i) => xs.indexOf(x) !== i);
  const dupParam = dup(m.parameters.map((p) => p.name));
  if (dupParam) throw new TemplateError(`${MANIFEST_FILE}: parameter "${dupParam}" is declared twice`);
  const dupAgent = dup(m.agents.map((a) => a.name));
  if (dupAgent) throw new TemplateError(`${MANIFEST_FILE}: agent "${dupAgent}" is declared twice`);
  for (const a of m.agents) {
    const dupApp = dup(a.apps.map((x) => x.slug));
    if (dupApp) throw new TemplateError(`${MANIFEST_FILE}: agent "${a.name}": app "${dupApp}" is declared twice`);
  }
  return m;
}

export function parameterSpecs(m: Manifest): ParameterSpec[] {
  return m.parameters.map((p, i) => {
    const where = `${MANIFEST_FILE}: parameter "${p.name}"`;
    if (p.validation.regex !== undefined) {
      try {
        new RegExp(p.validation.regex);
      } catch {
        throw new TemplateError(`${where}: validation.regex is not a valid regular expression`);
      }
      if (p.type !== "string") throw new TemplateError(`${where}: validation.regex applies only to string parameters`);
    }
    if ((p.validation.min !== undefined || p.validation.max !== undefined) && p.type !== "number") {
      throw new TemplateError(`${where}: validation.min/max apply only to number parameters`);
    }
    if (p.default !== undefined && p.options.length && !p.options.some((o) => o.value === p.default)) {
      throw new TemplateError(`${where}: default "${p.default}" is not one of its options`);
    }
    return {
      name: p.name,
      display_name: p.display_name,
      description: p.description,
      type: p.type,
      default_value: p.default ?? null,
      mutable: p.mutable,
      required: p.required ?? p.default === undefined,
      options: p.options.map((o) => ({ name: o.name, value: o.value, ...(o.description ? { description: o.description } : {}) })),
      validation_regex: p.validation.regex ?? null,
      validation_min: p.validation.min ?? null,
      validation_max: p.validation.max ?? null,
      validation_error: p.validation.error,
      ordering: i,
    };
  });
}
