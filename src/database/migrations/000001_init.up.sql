-- Site-wide values created once per deployment (deployment id; later the relay mesh key).
CREATE TABLE site_configs (
    key text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO site_configs (key, value) VALUES ('deployment_id', gen_random_uuid()::text);

CREATE TABLE organizations (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    display_name text NOT NULL,
    description text NOT NULL DEFAULT '',
    is_default boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX organizations_name_lower ON organizations (lower(name));
CREATE UNIQUE INDEX organizations_single_default ON organizations (is_default) WHERE is_default;

CREATE TYPE user_status AS ENUM ('active', 'suspended');
CREATE TYPE login_type AS ENUM ('password', 'token', 'none');

CREATE TABLE users (
    id uuid PRIMARY KEY,
    email text NOT NULL,
    username text NOT NULL,
    name text NOT NULL DEFAULT '',
    -- NULL for users that cannot log in with a password (login_type 'none').
    hashed_password text,
    login_type login_type NOT NULL DEFAULT 'password',
    status user_status NOT NULL DEFAULT 'active',
    rbac_roles text[] NOT NULL DEFAULT '{}',
    deleted boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz
);
CREATE UNIQUE INDEX users_email_lower ON users (lower(email)) WHERE NOT deleted;
CREATE UNIQUE INDEX users_username_lower ON users (lower(username)) WHERE NOT deleted;
CREATE INDEX users_created_at ON users (created_at, id);

CREATE TABLE organization_members (
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    roles text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX organization_members_user_id ON organization_members (user_id);

-- A token is "<id>-<secret>": the id is looked up, only a SHA-256 of the secret is stored.
CREATE TABLE api_keys (
    id text PRIMARY KEY,
    hashed_secret bytea NOT NULL,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    login_type login_type NOT NULL,
    token_name text NOT NULL DEFAULT '',
    scope text NOT NULL DEFAULT 'all',
    lifetime_seconds bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    last_used timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_user_id ON api_keys (user_id);
CREATE UNIQUE INDEX api_keys_user_token_name ON api_keys (user_id, lower(token_name)) WHERE login_type = 'token';
