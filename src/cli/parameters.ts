// Rich parameter values for `coder create` / `coder start`: --parameter flags, and a prompt for
// each required parameter that has neither a value nor a default. The server validates them all.
import type { TemplateVersionParameter } from "../codersdk/index.js";
import { CliError } from "./errors.js";
import { ask, interactive } from "./prompt.js";

type Value = { name: string; value: string };

const label = (p: TemplateVersionParameter) => (p.display_name && p.display_name !== p.name ? `${p.display_name} (${p.name})` : p.name);

/** A quick local check so that a typo at the prompt asks again instead of failing the build. */
function problem(p: TemplateVersionParameter, value: string): string | undefined {
  if (value === "") return "a value is required";
  if (p.type === "number" && !Number.isFinite(Number(value))) return "must be a number";
  if (p.type === "bool" && value !== "true" && value !== "false") return 'must be "true" or "false"';
  if (p.type !== "list(string)" && p.options.length && !p.options.some((o) => o.value === value)) return `must be one of: ${p.options.map((o) => o.value).join(", ")}`;
  return undefined;
}

async function prompt(p: TemplateVersionParameter): Promise<string> {
  process.stdout.write(`\n${label(p)}${p.type === "string" ? "" : ` [${p.type}]`}\n`);
  if (p.description) process.stdout.write(`${p.description.trim()}\n`);
  p.options.forEach((o, i) => process.stdout.write(`  ${i + 1}. ${o.name}${o.name === o.value ? "" : ` (${o.value})`}${o.description ? ` - ${o.description}` : ""}\n`));
  for (;;) {
    let value = await ask(p.options.length ? "Choose (number or value):" : "Value:", { flag: `--parameter ${p.name}=<value>` });
    const index = Number(value);
    if (p.options.length && Number.isInteger(index) && index >= 1 && index <= p.options.length && !p.options.some((o) => o.value === value)) {
      value = p.options[index - 1]!.value;
    }
    const bad = problem(p, value);
    if (!bad) return value;
    process.stdout.write(`${label(p)} ${bad}.\n`);
  }
}

/** The given values plus, for each required parameter without a value or default, one asked for. */
export async function completeParameters(specs: TemplateVersionParameter[], given: Value[]): Promise<Value[]> {
  const missing = specs.filter((p) => p.required && p.default_value === null && !given.some((g) => g.name === p.name));
  if (missing.length && !interactive()) {
    const names = missing.map((p) => `"${p.name}"`).join(", ");
    const flags = missing.map((p) => `--parameter ${p.name}=<value>`).join(" ");
    throw new CliError(`${missing.length > 1 ? `Parameters ${names} are` : `Parameter ${names} is`} required: pass ${flags}`);
  }
  const out = [...given];
  for (const p of missing) out.push({ name: p.name, value: await prompt(p) });
  return out;
}
