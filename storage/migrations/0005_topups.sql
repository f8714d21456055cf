-- Telegram Stars top-ups (issue 10). An invoice names a pending row by its opaque
-- payload; the row, not the invoice, says what is credited (the shop amount fixed
-- when the invoice was made). A row is paid at most once, and its ledger credit
-- carries the telegram_payment_charge_id as its unique key ('stars:<charge id>').
CREATE TABLE topups (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    payload       TEXT NOT NULL UNIQUE,
    user_id       INTEGER NOT NULL REFERENCES users (id),
    amount_minor  INTEGER NOT NULL CHECK (amount_minor > 0),  -- credited when paid
    currency      TEXT NOT NULL,                              -- SHOP_CURRENCY then
    stars         INTEGER NOT NULL CHECK (stars > 0),         -- the invoice's total, XTR
    state         TEXT NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'paid', 'refunded')),
    charge_id     TEXT UNIQUE,                                -- telegram_payment_charge_id
    expires_at    REAL NOT NULL,                              -- unix time; pre-checkout refuses after
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    paid_at       TEXT
);
CREATE INDEX topups_by_user ON topups (user_id, id DESC);

-- Payments that named no pending top-up of their payer, or a different total:
-- nothing is credited automatically; the admins are alerted with the charge id.
CREATE TABLE stray_payments (
    charge_id     TEXT PRIMARY KEY,
    user_id       INTEGER NOT NULL,
    payload       TEXT NOT NULL,
    stars         INTEGER NOT NULL,
    currency      TEXT NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    refunded_at   TEXT                            -- an admin gave the Stars back
);
