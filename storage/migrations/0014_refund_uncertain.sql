-- A Stars refund Telegram has not answered (yet) is a state of its own:
-- 'refund_uncertain'. The refund's debit is posted when Telegram is asked, and
-- the top-up stays uncertain until Telegram's answer (to /refund_stars, asked
-- again) or its list of transactions (the reconciliation) settles it: 'refunded',
-- or 'paid' again with the debit given back. refund_requested_at is when Telegram
-- was last asked (unix time): the reconciliation gives nothing back while a
-- request may still be on its way.
--
-- SQLite cannot change a CHECK constraint, so the table is rebuilt (no other
-- table refers to topups); its indexes are made again as they were.
CREATE TABLE topups_new (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    payload       TEXT NOT NULL UNIQUE,
    user_id       INTEGER NOT NULL REFERENCES users (id),
    amount_minor  INTEGER NOT NULL CHECK (amount_minor > 0),
    currency      TEXT NOT NULL,
    stars         INTEGER NOT NULL CHECK (stars > 0),
    state         TEXT NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'paid', 'refund_uncertain', 'refunded')),
    charge_id     TEXT UNIQUE,
    expires_at    REAL NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    paid_at       TEXT,
    refund_requested_at REAL
);
INSERT INTO topups_new (id, payload, user_id, amount_minor, currency, stars, state, charge_id,
                        expires_at, created_at, paid_at)
    SELECT id, payload, user_id, amount_minor, currency, stars, state, charge_id, expires_at,
           created_at, paid_at FROM topups;
UPDATE sqlite_sequence  -- ids are never reused, even of rows gone since
    SET seq = MAX(seq, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'topups'), 0))
    WHERE name = 'topups_new';
DROP TABLE topups;
ALTER TABLE topups_new RENAME TO topups;
CREATE INDEX topups_by_user ON topups (user_id, id DESC);
CREATE INDEX topups_paid ON topups (paid_at, amount_minor) WHERE state = 'paid';
CREATE INDEX topups_refund_uncertain ON topups (id) WHERE state = 'refund_uncertain';
