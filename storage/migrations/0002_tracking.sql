-- Order tracking: status history, "Incorrect order ID" counting, and the
-- durable outbox every message the bot sends on its own initiative goes through.

-- Consecutive polls that answered "Incorrect order ID" for this order; reset by
-- any real status. At the threshold the order is flagged for the admins once.
ALTER TABLE orders ADD COLUMN missing_polls INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN flagged_at TEXT;

-- Every status an order went through, written with the change itself.
CREATE TABLE order_history (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id     INTEGER NOT NULL REFERENCES orders (id),
    state        TEXT NOT NULL,
    panel_status TEXT,
    start_count  INTEGER,
    remains      INTEGER,
    refund_minor INTEGER NOT NULL DEFAULT 0,
    source       TEXT NOT NULL,                  -- tracker, refresh, admin, placement
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX order_history_by_order ON order_history (order_id, id);

CREATE INDEX refills_open ON refills (order_id) WHERE state IN ('pending', 'in_progress');

-- Messages waiting to be sent, and what became of them.
--   kind 'order':  an order's status changed (payload: state, remains, refund...);
--                  one pending row per order: later changes merge into it.
--   kind 'refill': a refill finished (payload: refill id and state).
--   kind 'alert':  a message to an admin (payload: text).
-- version grows on every merge, so a row merged while it was being sent stays
-- pending and its newer content is sent too.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id         INTEGER NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('order', 'refill', 'alert')),
    order_id        INTEGER REFERENCES orders (id),
    payload         TEXT NOT NULL,               -- JSON
    version         INTEGER NOT NULL DEFAULT 1,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sent', 'dropped', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,     -- unix time
    last_error      TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    sent_at         TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX outbox_by_chat ON outbox (chat_id) WHERE state = 'pending';
CREATE UNIQUE INDEX outbox_one_per_order ON outbox (order_id)
    WHERE state = 'pending' AND kind = 'order';
