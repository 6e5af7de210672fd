// The API's wire types, shared by coderd (which produces them) and every client.

export interface ValidationError {
  field: string;
  detail: string;
}

/** The body of every error response. */
export interface Response {
  message: string;
  detail?: string;
  validations?: ValidationError[];
}

export interface BuildInfo {
  version: string;
  commit: string;
  external_url: string;
  dashboard_url: string;
  deployment_id: string;
}

export type UserStatus = "active" | "suspended";
export type LoginType = "password" | "token" | "none";

export interface Role {
  name: string;
  display_name: string;
  organization_id?: string;
}

export interface User {
  id: string;
  username: string;
  name: string;
  email: string;
  created_at: string;
  updated_at: string;
  last_seen_at: string | null;
  status: UserStatus;
  login_type: LoginType;
  organization_ids: string[];
  roles: Role[];
}

export interface GetUsersResponse {
  users: User[];
  count: number;
}

export interface CreateFirstUserRequest {
  email: string;
  username: string;
  name?: string;
  password: string;
}

export interface CreateFirstUserResponse {
  user_id: string;
  organization_id: string;
}

export interface CreateUserRequest {
  email: string;
  username: string;
  name?: string;
  password?: string;
  login_type?: LoginType;
  organization_ids?: string[];
}

export interface LoginWithPasswordRequest {
  email: string;
  password: string;
}

export interface LoginWithPasswordResponse {
  session_token: string;
}

export interface UpdateUserPasswordRequest {
  old_password?: string;
  password: string;
}

export interface UpdateUserProfileRequest {
  username: string;
  name?: string;
}

export interface UpdateRoles {
  roles: string[];
}

export interface UserRoles {
  roles: string[];
  organization_roles: Record<string, string[]>;
}

export interface AssignableRole extends Role {
  assignable: boolean;
}

export interface APIKey {
  id: string;
  user_id: string;
  token_name: string;
  login_type: LoginType;
  scope: string;
  lifetime_seconds: number;
  expires_at: string;
  last_used: string;
  created_at: string;
  updated_at: string;
}

export interface CreateTokenRequest {
  token_name?: string;
  /** Seconds; defaults to the deployment's maximum token lifetime. */
  lifetime_seconds?: number;
  scope?: "all";
}

export interface GenerateAPIKeyResponse {
  key: string;
}

export interface Organization {
  id: string;
  name: string;
  display_name: string;
  description: string;
  is_default: boolean;
  created_at: string;
  updated_at: string;
}

export interface CreateOrganizationRequest {
  name: string;
  display_name?: string;
  description?: string;
}

export interface UpdateOrganizationRequest {
  name?: string;
  display_name?: string;
  description?: string;
}

export interface OrganizationMember {
  organization_id: string;
  user_id: string;
  username: string;
  email: string;
  roles: Role[];
  created_at: string;
  updated_at: string;
}
