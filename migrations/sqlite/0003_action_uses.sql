-- A `once` button (a reply action) is pressed at most once, by anyone, on any node: the
-- press that inserts this row runs; every later one finds it and is refused.
CREATE TABLE action_uses (
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    action_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    used_at    BIGINT NOT NULL,
    PRIMARY KEY (message_id, action_id)
);
