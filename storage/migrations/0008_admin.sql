-- The admin panel (issue 11): customers an admin blocked, when customers were
-- last seen, hidden catalog entries, why an order failed, shop settings an
-- admin changed in the bot, and the audit log of every admin action.

-- An admin blocked this customer (not `blocked`, which says the customer blocked
-- the bot). They keep their data and still get notices of orders already placed.
ALTER TABLE users ADD COLUMN banned_at TEXT;
-- The customer's last message or button, kept to within ACTIVITY_PRECISION
-- (bot/shop/backoffice/customers.py): "active in 24 h / 7 d / 30 d" and the broadcast audience.
ALTER TABLE users ADD COLUMN last_seen_at TEXT;
UPDATE users SET last_seen_at = updated_at;
CREATE INDEX users_by_last_seen ON users (last_seen_at);
CREATE INDEX users_by_created ON users (created_at);
CREATE INDEX users_by_username ON users (username COLLATE NOCASE);

-- Hidden by an admin: not sold, not searchable; old orders still show them.
ALTER TABLE categories ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;
ALTER TABLE services ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;

-- Why a failed order failed, when the panel said (bot/panel/errors.py RejectReason
-- values): the admins' list of orders refused for the shop's panel funds.
ALTER TABLE orders ADD COLUMN failure_reason TEXT;
CREATE INDEX orders_failed_by_reason ON orders (failure_reason, id) WHERE state = 'failed';
CREATE INDEX orders_flagged ON orders (flagged_at) WHERE flagged_at IS NOT NULL;

-- Settings an admin changes in the bot; they win over the environment's
-- (key 'markup_percent': the global markup, over MARKUP_PERCENT).
CREATE TABLE shop_settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) WITHOUT ROWID;

-- Every admin action, written in the same transaction as the change itself.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    admin_id    INTEGER NOT NULL,
    action      TEXT NOT NULL,                   -- bot/shop/backoffice/audit.py ACTIONS
    target_kind TEXT NOT NULL,                   -- user, order, service, category, shop, broadcast, payment
    target_id   TEXT NOT NULL,
    before      TEXT NOT NULL DEFAULT '',
    after       TEXT NOT NULL DEFAULT '',
    note        TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX audit_by_target ON audit_log (target_kind, target_id, id);
