-- slashd schema, PostgreSQL flavour. Timestamps are Unix milliseconds (BIGINT) and ids are
-- UUID text, so one repository layer reads both backends the same way.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('viewer', 'analyst', 'admin')),
    password_hash TEXT,
    status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    id               TEXT PRIMARY KEY,
    title            TEXT NOT NULL,
    owner_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status           TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'ended')),
    metadata         TEXT NOT NULL DEFAULT '{}',
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    ended_at         BIGINT,
    last_activity_at BIGINT NOT NULL,
    -- The last seq handed out; bumped in the same transaction that inserts a message,
    -- so seqs are gap-free and unique per session whoever posts.
    last_seq         BIGINT NOT NULL DEFAULT 0
);
-- "my sessions, newest activity first"
CREATE INDEX sessions_owner_activity ON sessions (owner_id, last_activity_at DESC);
-- retention sweep: idle active sessions, and ended sessions past retention
CREATE INDEX sessions_status_activity ON sessions (status, last_activity_at);
CREATE INDEX sessions_status_ended ON sessions (status, ended_at);

CREATE TABLE session_members (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_at   BIGINT NOT NULL,
    PRIMARY KEY (session_id, user_id)
);
CREATE INDEX session_members_user ON session_members (user_id);

CREATE TABLE messages (
    id         TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'command', 'system')),
    user_id    TEXT,
    content    TEXT NOT NULL,
    metadata   TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    UNIQUE (session_id, seq)
);
-- "messages in the last 24 h" for statistics
CREATE INDEX messages_created_at ON messages (created_at);

-- Private key-value data of each plugin (the `kv` capability).
CREATE TABLE plugin_kv (
    plugin     TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      BYTEA NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (plugin, key)
);

-- One row per command invocation, allowed or denied.
CREATE TABLE command_audit (
    id          TEXT PRIMARY KEY,
    at          BIGINT NOT NULL,
    user_id     TEXT NOT NULL,
    session_id  TEXT,
    command     TEXT NOT NULL,
    plugin      TEXT,
    args_sha256 TEXT NOT NULL,
    decision    TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    duration_ms BIGINT NOT NULL
);
CREATE INDEX command_audit_at ON command_audit (at);
CREATE INDEX command_audit_user_at ON command_audit (user_id, at);
CREATE INDEX command_audit_command_at ON command_audit (command, at);
