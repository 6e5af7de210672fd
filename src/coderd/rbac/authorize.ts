// The one policy decision: may this subject do this action to this object?
import { ROLES, type Action, type Permission, type ResourceType } from "./roles.js";

export interface Subject {
  /** The user id. */
  id: string;
  /** Explicit site roles; "member" is implied for every user. */
  siteRoles: readonly string[];
  /** Organization id → organization roles; every membership implies "organization-member". */
  orgRoles: Readonly<Record<string, readonly string[]>>;
  /** The API key's scope; "all" is the only one today. */
  scope: string;
}

export interface RbacObject {
  type: ResourceType;
  id?: string;
  /** The owning user, for objects that have one (a user owns itself). */
  ownerId?: string;
  /** The organization the object belongs to. */
  orgId?: string;
}

function grants(perms: readonly Permission[], type: ResourceType, action: Action): boolean {
  return perms.some(
    (p) => (p.resource === "*" || p.resource === type) && (p.actions === "*" || p.actions.includes(action)),
  );
}

export function authorize(subject: Subject, action: Action, object: RbacObject): boolean {
  for (const name of [...subject.siteRoles, "member"]) {
    const role = ROLES[name];
    if (!role || role.kind !== "site") continue;
    if (grants(role.site, object.type, action)) return true;
    if (object.ownerId === subject.id && grants(role.user, object.type, action)) return true;
  }
  if (object.orgId !== undefined) {
    const held = subject.orgRoles[object.orgId];
    if (held) {
      for (const name of [...held, "organization-member"]) {
        const role = ROLES[name];
        if (role?.kind === "organization" && grants(role.org, object.type, action)) return true;
      }
    }
  }
  return false;
}

/** Whether the subject may grant or remove the named role (in the given organization, for org roles). */
export function canAssignRole(subject: Subject, role: string, orgId?: string): boolean {
  const holders: string[] = [...subject.siteRoles];
  if (orgId !== undefined && subject.orgRoles[orgId]) holders.push(...subject.orgRoles[orgId]!);
  const target = ROLES[role];
  if (!target) return false;
  if (target.kind === "organization" && orgId === undefined) return false;
  if (target.kind === "site" && orgId !== undefined) return false;
  return holders.some((h) => ROLES[h]?.assigns.includes(role));
}
