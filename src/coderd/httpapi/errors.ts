// The small set of errors handlers throw; errorResponse() maps each (and whatever else reaches it)
// to a status and the API's error shape. The only place statuses for errors are decided.
import type { Response, ValidationError } from "../../codersdk/index.js";

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly detail?: string,
    readonly validations?: ValidationError[],
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class BadRequestError extends HttpError {
  constructor(message: string, detail?: string, validations?: ValidationError[]) {
    super(400, message, detail, validations);
  }
}

export class ValidationFailedError extends BadRequestError {
  constructor(validations: ValidationError[], message = "Validation failed.") {
    super(message, undefined, validations);
  }
}

export class UnauthorizedError extends HttpError {
  constructor(message = "You must be logged in to use this endpoint.", detail?: string) {
    super(401, message, detail);
  }
}

export class ForbiddenError extends HttpError {
  constructor(message = "Forbidden.", detail?: string) {
    super(403, message, detail);
  }
}

export class NotFoundError extends HttpError {
  constructor(message = "Resource not found or you do not have access to this resource.", detail?: string) {
    super(404, message, detail);
  }
}

export class ConflictError extends HttpError {
  constructor(message: string, detail?: string, validations?: ValidationError[]) {
    super(409, message, detail, validations);
  }
}

/** Fastify's own errors for malformed requests, by code. */
const FRAMEWORK_ERRORS: Record<string, { status: number; message: string }> = {
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, message: "Request body is not valid JSON." },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, message: "Request body is empty but Content-Type is application/json." },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, message: "Request body is too large." },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, message: "Unsupported Content-Type: send application/json." },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, message: "Content-Length does not match the body." },
  FST_ERR_BAD_URL: { status: 400, message: "Malformed URL." },
  FST_ERR_ASYNC_CONSTRAINT: { status: 400, message: "Malformed request." },
};

/** Unique indexes whose violation is the client's mistake (a name taken): a 409 naming the field. */
const UNIQUE_CONFLICTS: Record<string, { message: string; field: string }> = {
  users_email_lower: { message: "A user with this email already exists.", field: "email" },
  users_username_lower: { message: "A user with this username already exists.", field: "username" },
  organizations_name_lower: { message: "An organization with this name already exists.", field: "name" },
  templates_org_name: { message: "A template with this name already exists in the organization.", field: "name" },
  template_versions_template_name: { message: "A version with this name already exists for the template.", field: "name" },
};

export function errorResponse(err: unknown): { status: number; body: Response; internal: boolean } {
  if (err instanceof HttpError) {
    const body: Response = { message: err.message };
    if (err.detail) body.detail = err.detail;
    if (err.validations?.length) body.validations = err.validations;
    return { status: err.status, body, internal: false };
  }
  const e = err as { code?: string; statusCode?: number; message?: string; constraint?: string };
  const taken = e?.code === "23505" && e.constraint ? UNIQUE_CONFLICTS[e.constraint] : undefined;
  if (taken) return { status: 409, body: { message: taken.message, validations: [{ field: taken.field, detail: "is already in use" }] }, internal: false };
  const known = e?.code ? FRAMEWORK_ERRORS[e.code] : undefined;
  if (known) return { status: known.status, body: { message: known.message }, internal: false };
  if (e?.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, body: { message: "Malformed request.", detail: e.message }, internal: false };
  }
  return { status: 500, body: { message: "An internal error occurred." }, internal: true };
}
