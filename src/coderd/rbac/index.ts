export { authorize, canAssignRole, type RbacObject, type Subject } from "./authorize.js";
export {
  ROLES,
  SITE_ROLES,
  ORG_ROLES,
  ALL_ACTIONS,
  isOrgRole,
  isSiteRole,
  type Action,
  type ResourceType,
  type RoleDefinition,
} from "./roles.js";
