-- Broadcasts (issue 11): one message an admin sends to every customer (or to
-- those active in the last 30 days), queued in the outbox once per customer.

-- The message is kept here once; the outbox rows name it by id and the delivery
-- reads it at send time (20,000 rows never copy the text).
--   token: the confirmation's one-time token (a double tap on Confirm is one broadcast)
--   state: running -> done, or canceled by an admin (its pending rows dropped)
--   skipped: recipients in the audience left out when queued (they blocked the
--            bot, or an admin blocked them)
--   progress_*: the admin's progress message, edited as the broadcast goes
--   shown: the counts that message shows now (edited only when they change)
--   finished_at: set in the same transaction that queues the final summary
CREATE TABLE broadcasts (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    admin_id            INTEGER NOT NULL,
    token               TEXT NOT NULL UNIQUE,
    text                TEXT NOT NULL DEFAULT '',     -- Telegram HTML (a photo's caption)
    photo               TEXT,                         -- a photo's file_id
    audience            TEXT NOT NULL CHECK (audience IN ('all', 'active')),
    state               TEXT NOT NULL DEFAULT 'running'
                        CHECK (state IN ('running', 'done', 'canceled')),
    queued              INTEGER NOT NULL DEFAULT 0,
    skipped             INTEGER NOT NULL DEFAULT 0,
    progress_chat_id    INTEGER,
    progress_message_id INTEGER,
    shown               TEXT NOT NULL DEFAULT '',
    created_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at         TEXT
);
CREATE INDEX broadcasts_unfinished ON broadcasts (id) WHERE finished_at IS NULL;

-- The outbox's kind CHECK (0002) can't be altered in SQLite: the table is
-- rebuilt with 'broadcast' allowed and a broadcast_id column, and every index
-- of 0002, 0004 and 0006 made again.
CREATE TABLE outbox_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id         INTEGER NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('order', 'refill', 'alert', 'broadcast')),
    order_id        INTEGER REFERENCES orders (id),
    payload         TEXT NOT NULL,
    version         INTEGER NOT NULL DEFAULT 1,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sent', 'dropped', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    sent_at         TEXT,
    priority        INTEGER NOT NULL DEFAULT 0,
    fold_key        TEXT,
    scheduled_at    REAL,
    broadcast_id    INTEGER REFERENCES broadcasts (id)
);
INSERT INTO outbox_new (id, chat_id, kind, order_id, payload, version, state, attempts,
                        next_attempt_at, last_error, created_at, sent_at, priority, fold_key,
                        scheduled_at)
    SELECT id, chat_id, kind, order_id, payload, version, state, attempts, next_attempt_at,
           last_error, created_at, sent_at, priority, fold_key, scheduled_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE state = 'pending';
CREATE UNIQUE INDEX outbox_one_per_order ON outbox (order_id)
    WHERE state = 'pending' AND kind = 'order';
CREATE INDEX outbox_pending_by_chat ON outbox (chat_id, priority, id) WHERE state = 'pending';
CREATE INDEX outbox_by_fold_key ON outbox (fold_key, scheduled_at) WHERE fold_key IS NOT NULL;
-- A broadcast is queued once per customer, whatever happens to its Confirm.
CREATE UNIQUE INDEX outbox_one_per_broadcast ON outbox (broadcast_id, chat_id)
    WHERE broadcast_id IS NOT NULL;
-- The progress counts: a broadcast's rows by state.
CREATE INDEX outbox_by_broadcast ON outbox (broadcast_id, state, last_error)
    WHERE broadcast_id IS NOT NULL;
