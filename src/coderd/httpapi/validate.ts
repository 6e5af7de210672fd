// Request validation with zod: every failure becomes a 400 whose validations name the field.
import type { z } from "zod";
import { BadRequestError, ValidationFailedError } from "./errors.js";

/**
 * The path of the first string holding U+0000, which Postgres cannot store in text. Iterative:
 * a deeply nested body must not overflow the stack.
 */
function findNul(data: unknown): string | undefined {
  const stack: Array<[unknown, string]> = [[data, ""]];
  while (stack.length) {
    const [value, path] = stack.pop()!;
    if (typeof value === "string") {
      if (value.includes("\0")) return path;
    } else if (value && typeof value === "object") {
      for (const [k, v] of Object.entries(value)) stack.push([v, path ? `${path}.${k}` : k]);
    }
  }
  return undefined;
}

export function parseInput<S extends z.ZodType>(schema: S, data: unknown, where: "body" | "query" | "params" = "body"): z.output<S> {
  if (where === "body" && data === undefined) throw new BadRequestError("Request body is required.", "Send a JSON object with Content-Type: application/json.");
  const nul = findNul(data);
  if (nul !== undefined) throw new ValidationFailedError([{ field: nul || where, detail: "must not contain NUL (U+0000) characters" }]);
  const r = schema.safeParse(data);
  if (r.success) return r.data;
  const validations = r.error.issues.map((i) => ({
    field: i.path.length ? i.path.map(String).join(".") : where,
    detail: i.message,
  }));
  throw new ValidationFailedError(validations, `Invalid ${where === "body" ? "request body" : where === "query" ? "query parameters" : "path parameters"}.`);
}
