import { describe, expect, it } from "vitest";
import { authorize, canAssignRole, type Subject } from "./authorize.js";

const ORG = "11111111-1111-1111-1111-111111111111";
const OTHER_ORG = "22222222-2222-2222-2222-222222222222";

const subject = (siteRoles: string[], orgRoles: Record<string, string[]> = { [ORG]: [] }): Subject => ({
  id: "me",
  siteRoles,
  orgRoles,
  scope: "all",
});

describe("authorize", () => {
  it("lets a member act on what it owns and nothing else", () => {
    const m = subject([]);
    expect(authorize(m, "read", { type: "user", id: "me", ownerId: "me" })).toBe(true);
    expect(authorize(m, "update_personal", { type: "user", id: "me", ownerId: "me" })).toBe(true);
    expect(authorize(m, "read", { type: "user", id: "you", ownerId: "you" })).toBe(false);
    expect(authorize(m, "delete", { type: "api_key", ownerId: "me" })).toBe(true);
    expect(authorize(m, "delete", { type: "api_key", ownerId: "you" })).toBe(false);
    expect(authorize(m, "create", { type: "user" })).toBe(false);
  });

  it("scopes organization roles to their organization", () => {
    const m = subject([], { [ORG]: ["organization-admin"] });
    expect(authorize(m, "update", { type: "organization", id: ORG, orgId: ORG })).toBe(true);
    expect(authorize(m, "read", { type: "organization", id: OTHER_ORG, orgId: OTHER_ORG })).toBe(false);
    // Membership alone grants read.
    const plain = subject([], { [ORG]: [] });
    expect(authorize(plain, "read", { type: "organization_member", orgId: ORG })).toBe(true);
    expect(authorize(plain, "delete", { type: "organization_member", orgId: ORG })).toBe(false);
  });

  it("gives site roles their site-wide grants", () => {
    expect(authorize(subject(["owner"]), "delete", { type: "organization", id: OTHER_ORG, orgId: OTHER_ORG })).toBe(true);
    expect(authorize(subject(["auditor"]), "read", { type: "user", id: "x", ownerId: "x" })).toBe(true);
    expect(authorize(subject(["auditor"]), "update", { type: "user", id: "x", ownerId: "x" })).toBe(false);
    expect(authorize(subject(["user-admin"]), "create", { type: "user" })).toBe(true);
    expect(authorize(subject(["user-admin"]), "create", { type: "api_key", ownerId: "x" })).toBe(false);
  });

  it("ignores unknown role names rather than failing open", () => {
    expect(authorize(subject(["superuser"]), "read", { type: "user", id: "x", ownerId: "x" })).toBe(false);
  });
});

describe("canAssignRole", () => {
  it("lets an owner assign anything and a user admin anything but owner", () => {
    expect(canAssignRole(subject(["owner"]), "owner")).toBe(true);
    expect(canAssignRole(subject(["user-admin"]), "auditor")).toBe(true);
    expect(canAssignRole(subject(["user-admin"]), "owner")).toBe(false);
    expect(canAssignRole(subject([]), "auditor")).toBe(false);
  });

  it("keeps site and organization roles apart", () => {
    const admin = subject([], { [ORG]: ["organization-admin"] });
    expect(canAssignRole(admin, "organization-admin", ORG)).toBe(true);
    expect(canAssignRole(admin, "organization-admin", OTHER_ORG)).toBe(false);
    expect(canAssignRole(admin, "auditor", ORG)).toBe(false);
    expect(canAssignRole(subject(["owner"]), "organization-admin")).toBe(false);
  });
});
