// Request validation with zod: every failure becomes a 400 whose validations name the field.
import type { z } from "zod";
import { BadRequestError, ValidationFailedError } from "./errors.js";

export function parseInput<S extends z.ZodType>(schema: S, data: unknown, where: "body" | "query" | "params" = "body"): z.output<S> {
  if (where === "body" && data === undefined) throw new BadRequestError("Request body is required.", "Send a JSON object with Content-Type: application/json.");
  const r = schema.safeParse(data);
  if (r.success) return r.data;
  const validations = r.error.issues.map((i) => ({
    field: i.path.length ? i.path.map(String).join(".") : where,
    detail: i.message,
  }));
  throw new ValidationFailedError(validations, `Invalid ${where === "body" ? "request body" : where === "query" ? "query parameters" : "path parameters"}.`);
}
