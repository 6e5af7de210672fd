// The built-in roles. A role grants actions on resource types at one of three levels:
// site (any object), org (objects of an organization where the subject holds the role) and
// user (objects the subject owns).

// "ssh": reach a workspace's agents over the tunnel (SSH, port forwarding, terminal, apps).
export type Action = "create" | "read" | "update" | "delete" | "update_personal" | "ssh";
export const ALL_ACTIONS: readonly Action[] = ["create", "read", "update", "delete", "update_personal", "ssh"];

export type ResourceType =
  | "user"
  | "api_key"
  | "organization"
  | "organization_member"
  | "assign_role"
  | "assign_org_role"
  | "deployment_config"
  | "debug_info"
  | "replicas"
  | "file"
  | "template"
  | "workspace"
  | "provisioner_daemon"
  | "provisioner_job";

export interface Permission {
  resource: ResourceType | "*";
  actions: readonly Action[] | "*";
}

export interface RoleDefinition {
  name: string;
  displayName: string;
  /** Site roles are held deployment-wide; organization roles per organization. */
  kind: "site" | "organization";
  site: Permission[];
  org: Permission[];
  user: Permission[];
  /** Roles a holder of this role may grant or take away. */
  assigns: readonly string[];
}

export const SITE_ROLES = ["owner", "user-admin", "template-admin", "auditor", "member"] as const;
export const ORG_ROLES = ["organization-admin", "organization-user-admin", "organization-member"] as const;
export type SiteRole = (typeof SITE_ROLES)[number];
export type OrgRole = (typeof ORG_ROLES)[number];

const all = "*" as const;

/** Every user holds "member" implicitly; its permissions are over what the user owns. */
const member: RoleDefinition = {
  name: "member",
  displayName: "Member",
  kind: "site",
  site: [],
  org: [],
  user: [
    { resource: "user", actions: ["read", "update", "update_personal"] },
    { resource: "api_key", actions: all },
    { resource: "workspace", actions: all },
  ],
  assigns: [],
};

export const ROLES: Record<string, RoleDefinition> = {
  owner: {
    name: "owner",
    displayName: "Owner",
    kind: "site",
    site: [{ resource: "*", actions: all }],
    org: [],
    user: [],
    assigns: [...SITE_ROLES, ...ORG_ROLES],
  },
  "user-admin": {
    name: "user-admin",
    displayName: "User Admin",
    kind: "site",
    site: [
      { resource: "user", actions: ["create", "read", "update", "delete"] },
      { resource: "organization", actions: ["read"] },
      { resource: "organization_member", actions: all },
      { resource: "assign_role", actions: ["create", "read", "delete"] },
      { resource: "assign_org_role", actions: ["create", "read", "delete"] },
    ],
    org: [],
    user: [],
    assigns: ["user-admin", "template-admin", "auditor", "member", ...ORG_ROLES],
  },
  "template-admin": {
    name: "template-admin",
    displayName: "Template Admin",
    kind: "site",
    site: [
      { resource: "user", actions: ["read"] },
      { resource: "organization", actions: ["read"] },
      { resource: "organization_member", actions: ["read"] },
      { resource: "template", actions: all },
      { resource: "file", actions: all },
      { resource: "provisioner_daemon", actions: ["read"] },
      { resource: "provisioner_job", actions: ["read"] },
      { resource: "workspace", actions: ["read"] },
    ],
    org: [],
    user: [],
    assigns: [],
  },
  auditor: {
    name: "auditor",
    displayName: "Auditor",
    kind: "site",
    site: [
      { resource: "user", actions: ["read"] },
      { resource: "organization", actions: ["read"] },
      { resource: "organization_member", actions: ["read"] },
      { resource: "deployment_config", actions: ["read"] },
      { resource: "template", actions: ["read"] },
    ],
    org: [],
    user: [],
    assigns: [],
  },
  member,
  "organization-admin": {
    name: "organization-admin",
    displayName: "Organization Admin",
    kind: "organization",
    site: [],
    org: [{ resource: "*", actions: all }],
    user: [],
    assigns: [...ORG_ROLES],
  },
  "organization-user-admin": {
    name: "organization-user-admin",
    displayName: "Organization User Admin",
    kind: "organization",
    site: [],
    org: [
      { resource: "organization", actions: ["read"] },
      { resource: "organization_member", actions: all },
      { resource: "assign_org_role", actions: ["create", "read", "delete"] },
    ],
    user: [],
    assigns: ["organization-user-admin", "organization-member"],
  },
  "organization-member": {
    name: "organization-member",
    displayName: "Organization Member",
    kind: "organization",
    site: [],
    org: [
      { resource: "organization", actions: ["read"] },
      { resource: "organization_member", actions: ["read"] },
      // Members use the organization's templates to create their own workspaces.
      { resource: "template", actions: ["read"] },
    ],
    user: [],
    assigns: [],
  },
};

export function isSiteRole(name: string): name is SiteRole {
  return (SITE_ROLES as readonly string[]).includes(name);
}

export function isOrgRole(name: string): name is OrgRole {
  return (ORG_ROLES as readonly string[]).includes(name);
}
