-- Wholesale API (issue 23): the shop serves API v2 to its own customers.

-- A customer's API access: at most one key (the primary key), stored only as its
-- SHA-256 (keys are 32+ random characters: a fast hash is enough, and the lookup
-- by hash is one index probe). key_hash NULL: no key now (revoked, or never made).
CREATE TABLE api_access (
    user_id       INTEGER PRIMARY KEY REFERENCES users (id),
    key_hash      TEXT UNIQUE,
    key_hint      TEXT,                              -- the key's last 4 characters
    key_created_at TEXT,                             -- when the current key was made
    last_used_at  TEXT,                              -- the last request with a key of theirs
    requests      INTEGER NOT NULL DEFAULT 0,        -- requests made with their keys
    notify        INTEGER NOT NULL DEFAULT 0,        -- API orders' notices sent in the chat
    disabled_at   TEXT,                              -- the owner turned API access off
    disabled_by   INTEGER                            -- which admin
) WITHOUT ROWID;

-- An order placed through the API carries the key its repeats are recognised by
-- (the service and every order field): the same request from the same customer within 60 s
-- answers this order instead of placing another. NULL: placed in the chat.
ALTER TABLE orders ADD COLUMN api_repeat_key TEXT;
CREATE INDEX orders_api_repeat ON orders (user_id, api_repeat_key) WHERE api_repeat_key IS NOT NULL;
