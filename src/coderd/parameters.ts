// Rich parameter values: checked against the template version's declarations when a workspace
// is created or built. Every error names the parameter.
import type { TemplateVersionParameter } from "../database/index.js";
import { ValidationFailedError } from "./httpapi/errors.js";

export interface ParameterValue {
  name: string;
  value: string;
}

function check(p: TemplateVersionParameter, value: string): string | undefined {
  const custom = p.validation_error || undefined;
  switch (p.type) {
    case "number": {
      if (value.trim() === "" || !Number.isFinite(Number(value))) return "must be a number";
      const n = Number(value);
      if (p.validation_min !== null && n < p.validation_min) return custom ?? `must be at least ${p.validation_min}`;
      if (p.validation_max !== null && n > p.validation_max) return custom ?? `must be at most ${p.validation_max}`;
      break;
    }
    case "bool":
      if (value !== "true" && value !== "false") return 'must be "true" or "false"';
      break;
    case "list(string)": {
      let list: unknown;
      try {
        list = JSON.parse(value);
      } catch {
        return 'must be a JSON list of strings, e.g. ["a","b"]';
      }
      if (!Array.isArray(list) || !list.every((x) => typeof x === "string")) return 'must be a JSON list of strings, e.g. ["a","b"]';
      if (p.options.length) {
        const bad = list.find((x) => !p.options.some((o) => o.value === x));
        if (bad !== undefined) return `"${bad}" is not one of the options (${p.options.map((o) => o.value).join(", ")})`;
      }
      return undefined;
    }
    default:
      if (p.validation_regex !== null && !new RegExp(p.validation_regex).test(value)) return custom ?? `must match ${p.validation_regex}`;
  }
  if (p.options.length && !p.options.some((o) => o.value === value)) {
    return `"${value}" is not one of the options (${p.options.map((o) => o.value).join(", ")})`;
  }
  return undefined;
}

/**
 * The values a build runs with: given ones, else the previous build's, else defaults. Immutable
 * parameters cannot change after the first build.
 */
export function resolveParameters(specs: TemplateVersionParameter[], given: ParameterValue[], previous: ParameterValue[] | undefined): ParameterValue[] {
  const errors: Array<{ field: string; detail: string }> = [];
  const byName = new Map(given.map((g) => [g.name, g.value]));
  for (const g of given) {
    if (!specs.some((p) => p.name === g.name)) errors.push({ field: `rich_parameter_values.${g.name}`, detail: "is not a parameter of this template version" });
  }
  const out: ParameterValue[] = [];
  for (const p of specs) {
    const field = `rich_parameter_values.${p.name}`;
    const before = previous?.find((v) => v.name === p.name)?.value;
    const value = byName.get(p.name) ?? before ?? p.default_value ?? undefined;
    if (value === undefined) {
      if (p.required) errors.push({ field, detail: "is required" });
      continue;
    }
    if (before !== undefined && byName.has(p.name) && byName.get(p.name) !== before && !p.mutable) {
      errors.push({ field, detail: "is immutable: it cannot change after the workspace was created" });
      continue;
    }
    const problem = check(p, value);
    if (problem) errors.push({ field, detail: problem });
    else out.push({ name: p.name, value });
  }
  if (errors.length) throw new ValidationFailedError(errors, "Invalid parameter values.");
  return out;
}
