import { describe, expect, it } from "vitest";
import type { TemplateVersionParameter } from "../database/index.js";
import { ValidationFailedError } from "./httpapi/errors.js";
import { resolveParameters } from "./parameters.js";

const param = (p: Partial<TemplateVersionParameter> & { name: string }): TemplateVersionParameter => ({
  template_version_id: "v",
  display_name: "",
  description: "",
  type: "string",
  default_value: null,
  mutable: true,
  required: false,
  options: [],
  validation_regex: null,
  validation_min: null,
  validation_max: null,
  validation_error: "",
  ordering: 0,
  ...p,
});

function errors(fn: () => unknown): Array<{ field: string; detail: string }> {
  try {
    fn();
  } catch (err) {
    if (err instanceof ValidationFailedError) return err.validations ?? [];
    throw err;
  }
  throw new Error("no validation error");
}

describe("resolveParameters", () => {
  it("takes given values, then the previous build's, then defaults", () => {
    const specs = [param({ name: "a", default_value: "x" }), param({ name: "b", default_value: "y" }), param({ name: "c", default_value: "z" })];
    expect(resolveParameters(specs, [{ name: "a", value: "1" }], [{ name: "b", value: "2" }])).toEqual([
      { name: "a", value: "1" },
      { name: "b", value: "2" },
      { name: "c", value: "z" },
    ]);
  });

  it("checks every type and rule, naming each parameter", () => {
    const specs = [
      param({ name: "n", type: "number", validation_min: 1, validation_max: 8 }),
      param({ name: "flag", type: "bool" }),
      param({ name: "tags", type: "list(string)", options: [{ name: "A", value: "a" }, { name: "B", value: "b" }] }),
      param({ name: "region", options: [{ name: "US", value: "us" }] }),
      param({ name: "slug", validation_regex: "^[a-z]+$", validation_error: "lowercase only" }),
      param({ name: "needed", required: true }),
    ];
    expect(
      errors(() =>
        resolveParameters(
          specs,
          [
            { name: "n", value: "9" },
            { name: "flag", value: "yes" },
            { name: "tags", value: '["a","c"]' },
            { name: "region", value: "eu" },
            { name: "slug", value: "Nope" },
            { name: "stray", value: "1" },
          ],
          undefined,
        ),
      ),
    ).toEqual([
      { field: "rich_parameter_values.stray", detail: "is not a parameter of this template version" },
      { field: "rich_parameter_values.n", detail: "must be at most 8" },
      { field: "rich_parameter_values.flag", detail: 'must be "true" or "false"' },
      { field: "rich_parameter_values.tags", detail: '"c" is not one of the options (a, b)' },
      { field: "rich_parameter_values.region", detail: '"eu" is not one of the options (us)' },
      { field: "rich_parameter_values.slug", detail: "lowercase only" },
      { field: "rich_parameter_values.needed", detail: "is required" },
    ]);
    expect(errors(() => resolveParameters([param({ name: "n", type: "number" })], [{ name: "n", value: "" }], undefined))).toEqual([
      { field: "rich_parameter_values.n", detail: "must be a number" },
    ]);
    expect(errors(() => resolveParameters([param({ name: "l", type: "list(string)" })], [{ name: "l", value: "[1]" }], undefined))[0]!.detail).toMatch(/JSON list of strings/);
  });

  it("keeps immutable parameters as they were first built", () => {
    const specs = [param({ name: "disk", mutable: false })];
    const previous = [{ name: "disk", value: "10" }];
    expect(resolveParameters(specs, [{ name: "disk", value: "10" }], previous)).toEqual(previous);
    expect(errors(() => resolveParameters(specs, [{ name: "disk", value: "20" }], previous))[0]!.detail).toMatch(/immutable/);
  });
});
