// How handlers ask the RBAC module. Objects the caller may not even read are reported as
// missing (404), so ids of other users' things reveal nothing; objects the caller can see but
// not change get 403.
import type { FastifyRequest } from "fastify";
import { authorize, type Action, type RbacObject } from "../rbac/index.js";
import { requireAuth } from "./authenticate.js";
import { ForbiddenError, NotFoundError } from "./errors.js";

export function can(req: FastifyRequest, action: Action, object: RbacObject): boolean {
  return authorize(requireAuth(req).subject, action, object);
}

/** For an existing object: 404 when it is invisible to the caller, 403 when only the action is denied. */
export function authorizeObject(req: FastifyRequest, action: Action, object: RbacObject): void {
  if (can(req, action, object)) return;
  if (action !== "read" && can(req, "read", object)) {
    throw new ForbiddenError("Forbidden.", `You may not ${action.replace("_", " ")} this ${object.type.replace("_", " ")}.`);
  }
  throw new NotFoundError();
}

/** For actions on a collection (create, list everything), whose existence is no secret. */
export function authorizeAction(req: FastifyRequest, action: Action, object: RbacObject): void {
  if (!can(req, action, object)) {
    throw new ForbiddenError("Forbidden.", `You may not ${action.replace("_", " ")} ${object.type.replace("_", " ")} resources.`);
  }
}
