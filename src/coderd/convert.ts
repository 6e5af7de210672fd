// Database rows to API objects.
import type * as sdk from "../codersdk/index.js";
import type { ApiKey, Organization, OrganizationMember, User } from "../database/index.js";
import { ROLES } from "./rbac/index.js";

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function role(name: string, organizationId?: string): sdk.Role {
  const r: sdk.Role = { name, display_name: ROLES[name]?.displayName ?? name };
  if (organizationId) r.organization_id = organizationId;
  return r;
}

export function user(u: User, memberships: Array<{ organization_id: string }>): sdk.User {
  return {
    id: u.id,
    username: u.username,
    name: u.name,
    email: u.email,
    created_at: u.created_at.toISOString(),
    updated_at: u.updated_at.toISOString(),
    last_seen_at: iso(u.last_seen_at),
    status: u.status,
    login_type: u.login_type,
    organization_ids: memberships.map((m) => m.organization_id),
    roles: u.rbac_roles.map((r) => role(r)),
  };
}

export function apiKey(k: ApiKey): sdk.APIKey {
  return {
    id: k.id,
    user_id: k.user_id,
    token_name: k.token_name,
    login_type: k.login_type,
    scope: k.scope,
    lifetime_seconds: k.lifetime_seconds,
    expires_at: k.expires_at.toISOString(),
    last_used: k.last_used.toISOString(),
    created_at: k.created_at.toISOString(),
    updated_at: k.updated_at.toISOString(),
  };
}

export function organization(o: Organization): sdk.Organization {
  return {
    id: o.id,
    name: o.name,
    display_name: o.display_name,
    description: o.description,
    is_default: o.is_default,
    created_at: o.created_at.toISOString(),
    updated_at: o.updated_at.toISOString(),
  };
}

export function organizationMember(m: OrganizationMember, u: User): sdk.OrganizationMember {
  return {
    organization_id: m.organization_id,
    user_id: m.user_id,
    username: u.username,
    email: u.email,
    roles: m.roles.map((r) => role(r, m.organization_id)),
    created_at: m.created_at.toISOString(),
    updated_at: m.updated_at.toISOString(),
  };
}
