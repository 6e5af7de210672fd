// Row types of the tables, as Kysely sees them. Keep in step with migrations/.
import type { ColumnType, Generated, Insertable, Selectable, Updateable } from "kysely";

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;

export type UserStatus = "active" | "suspended";
export type LoginType = "password" | "token" | "none";

export interface SiteConfigsTable {
  key: string;
  value: string;
}

export interface OrganizationsTable {
  id: string;
  name: string;
  display_name: string;
  description: Generated<string>;
  is_default: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface UsersTable {
  id: string;
  email: string;
  username: string;
  name: Generated<string>;
  hashed_password: string | null;
  login_type: Generated<LoginType>;
  status: Generated<UserStatus>;
  rbac_roles: Generated<string[]>;
  deleted: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
  last_seen_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

export interface OrganizationMembersTable {
  organization_id: string;
  user_id: string;
  roles: Generated<string[]>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface ApiKeysTable {
  id: string;
  hashed_secret: Buffer;
  user_id: string;
  login_type: LoginType;
  token_name: Generated<string>;
  scope: Generated<string>;
  lifetime_seconds: number;
  expires_at: ColumnType<Date, Date | string, Date | string>;
  last_used: Timestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface SchemaMigrationsTable {
  version: number;
  name: string;
  applied_at: Timestamp;
}

export interface DB {
  site_configs: SiteConfigsTable;
  organizations: OrganizationsTable;
  users: UsersTable;
  organization_members: OrganizationMembersTable;
  api_keys: ApiKeysTable;
  schema_migrations: SchemaMigrationsTable;
}

export type User = Selectable<UsersTable>;
export type NewUser = Insertable<UsersTable>;
export type UserUpdate = Updateable<UsersTable>;
export type Organization = Selectable<OrganizationsTable>;
export type OrganizationMember = Selectable<OrganizationMembersTable>;
export type ApiKey = Selectable<ApiKeysTable>;
export type NewApiKey = Insertable<ApiKeysTable>;
