-- Growth (issue 21): referrals that pay on real money, promo codes, loyalty tiers.

-- ---------------------------------------------------------------- referrals
-- referral_code: the customer's own link code (opaque, made when first needed).
-- started_at: their first /start; a referral link counts only there, so every
-- customer from before this migration has had theirs. referred_by: who brought
-- them (never themselves, never a loop). referrals_off_at: an admin stopped this
-- referrer's commission.
ALTER TABLE users ADD COLUMN referral_code TEXT;
ALTER TABLE users ADD COLUMN started_at TEXT;
UPDATE users SET started_at = created_at;
ALTER TABLE users ADD COLUMN referred_by INTEGER REFERENCES users (id);
ALTER TABLE users ADD COLUMN referred_at TEXT;
ALTER TABLE users ADD COLUMN referrals_off_at TEXT;
CREATE UNIQUE INDEX users_by_referral_code ON users (referral_code)
    WHERE referral_code IS NOT NULL;
CREATE INDEX users_by_referrer ON users (referred_by, id) WHERE referred_by IS NOT NULL;

-- One commission per Stars top-up and level (1: the payer's referrer, 2: theirs),
-- written with its ledger credit in the top-up's transaction. A refund of the
-- top-up takes it back in the refund's transaction: taken_back_minor from the
-- referrer's balance, written_off_minor what they had spent already (a balance
-- never goes below zero). A refund Telegram refused gives it back: both 0 again.
CREATE TABLE referral_payouts (
    charge_id         TEXT NOT NULL,
    level             INTEGER NOT NULL CHECK (level IN (1, 2)),
    referrer_id       INTEGER NOT NULL REFERENCES users (id),
    referred_id       INTEGER NOT NULL REFERENCES users (id),
    topup_minor       INTEGER NOT NULL CHECK (topup_minor > 0),
    amount_minor      INTEGER NOT NULL CHECK (amount_minor > 0),
    state             TEXT NOT NULL DEFAULT 'paid' CHECK (state IN ('paid', 'taken_back')),
    taken_back_minor  INTEGER NOT NULL DEFAULT 0 CHECK (taken_back_minor >= 0),
    written_off_minor INTEGER NOT NULL DEFAULT 0 CHECK (written_off_minor >= 0),
    created_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    taken_back_at     TEXT,
    PRIMARY KEY (charge_id, level),
    CHECK (taken_back_minor + written_off_minor <= amount_minor)
) WITHOUT ROWID;
CREATE INDEX referral_payouts_by_referrer ON referral_payouts (referrer_id, created_at);
CREATE INDEX referral_payouts_by_created ON referral_payouts (created_at);

-- A referrer's notice of a commission is an outbox row of its own kind,
-- 'referral', queued in the top-up's transaction (storage/outbox.py). SQLite
-- cannot change the outbox's kind CHECK (0009), so the table is rebuilt as 0009
-- left it, with every index made again, its ids going on from the old sequence.
CREATE TABLE outbox_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id         INTEGER NOT NULL,
    kind            TEXT NOT NULL
                    CHECK (kind IN ('order', 'refill', 'alert', 'broadcast', 'referral')),
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
                        scheduled_at, broadcast_id)
    SELECT id, chat_id, kind, order_id, payload, version, state, attempts, next_attempt_at,
           last_error, created_at, sent_at, priority, fold_key, scheduled_at, broadcast_id
    FROM outbox;
UPDATE sqlite_sequence
    SET seq = MAX(seq, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0))
    WHERE name = 'outbox_new';
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE state = 'pending';
CREATE UNIQUE INDEX outbox_one_per_order ON outbox (order_id)
    WHERE state = 'pending' AND kind = 'order';
CREATE INDEX outbox_pending_by_chat ON outbox (chat_id, priority, id) WHERE state = 'pending';
CREATE INDEX outbox_by_fold_key ON outbox (fold_key, scheduled_at) WHERE fold_key IS NOT NULL;
CREATE UNIQUE INDEX outbox_one_per_broadcast ON outbox (broadcast_id, chat_id)
    WHERE broadcast_id IS NOT NULL;
CREATE INDEX outbox_by_broadcast ON outbox (broadcast_id, state, last_error)
    WHERE broadcast_id IS NOT NULL;

-- ---------------------------------------------------------------- promo codes
-- code: upper case, 3-32 of A-Z 0-9 _ -. A balance code credits amount_minor; a
-- discount code takes percent (Decimal text) off the customer's next order of at
-- least min_order_minor. uses counts the uses made (a balance credited, an order
-- placed with the discount); max_uses NULL is unlimited; per_user is how many
-- uses one customer may make; expires_at is unix time, NULL for never.
CREATE TABLE promo_codes (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    code            TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL CHECK (kind IN ('balance', 'discount')),
    amount_minor    INTEGER CHECK (amount_minor > 0),
    percent         TEXT,
    min_order_minor INTEGER NOT NULL DEFAULT 0 CHECK (min_order_minor >= 0),
    max_uses        INTEGER CHECK (max_uses > 0),
    per_user        INTEGER NOT NULL DEFAULT 1 CHECK (per_user > 0),
    uses            INTEGER NOT NULL DEFAULT 0
                    CHECK (uses >= 0 AND (max_uses IS NULL OR uses <= max_uses)),
    expires_at      REAL,
    disabled_at     TEXT,
    created_by      INTEGER NOT NULL,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CHECK ((kind = 'balance') = (amount_minor IS NOT NULL)),
    CHECK ((kind = 'discount') = (percent IS NOT NULL))
);

-- A customer's uses of codes. A balance code's use is 'used' at once. A discount
-- code is 'attached' to the customer's next order (one at a time), 'used' by the
-- order's own transaction (order_id), and 'given_back' when that order failed or
-- was refunded in full (the use counts no more); 'detached' when another code
-- replaced it before an order.
CREATE TABLE promo_uses (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    code_id    INTEGER NOT NULL REFERENCES promo_codes (id),
    user_id    INTEGER NOT NULL REFERENCES users (id),
    state      TEXT NOT NULL CHECK (state IN ('attached', 'used', 'given_back', 'detached')),
    order_id   INTEGER REFERENCES orders (id),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    used_at    TEXT
);
CREATE UNIQUE INDEX promo_uses_attached ON promo_uses (user_id) WHERE state = 'attached';
CREATE UNIQUE INDEX promo_uses_by_order ON promo_uses (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX promo_uses_by_code ON promo_uses (code_id, user_id);

-- ---------------------------------------------------------------- discounts
-- How much a discount took off an order's list price, and by what: 'tier'
-- (LOYALTY_TIERS) or 'promo' (promo_uses.order_id). price_minor stays what was
-- charged; the list price is their sum.
ALTER TABLE orders ADD COLUMN discount_minor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN discount_source TEXT;

-- ---------------------------------------------------------------- the ledger
-- New kinds: 'referral' (a commission), 'referral_clawback' (taken back with a
-- refunded top-up), 'promo' (a balance code). SQLite cannot change a CHECK
-- constraint, so the table is rebuilt (no table refers to the ledger); its
-- indexes are made again as they were.
CREATE TABLE ledger_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         INTEGER NOT NULL REFERENCES users (id),
    amount_minor    INTEGER NOT NULL CHECK (amount_minor <> 0),
    balance_after   INTEGER NOT NULL CHECK (balance_after >= 0),
    kind            TEXT NOT NULL CHECK (kind IN ('credit', 'debit', 'order', 'refund',
                    'topup', 'topup_refund', 'referral', 'referral_clawback', 'promo')),
    idempotency_key TEXT NOT NULL UNIQUE,
    order_id        INTEGER REFERENCES orders (id),
    actor_id        INTEGER,
    note            TEXT NOT NULL DEFAULT '',
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
INSERT INTO ledger_new (id, user_id, amount_minor, balance_after, kind, idempotency_key,
                        order_id, actor_id, note, created_at)
    SELECT id, user_id, amount_minor, balance_after, kind, idempotency_key, order_id, actor_id,
           note, created_at FROM ledger;
UPDATE sqlite_sequence  -- ids are never reused, even of rows gone since
    SET seq = MAX(seq, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'ledger'), 0))
    WHERE name = 'ledger_new';
DROP TABLE ledger;
ALTER TABLE ledger_new RENAME TO ledger;
CREATE INDEX ledger_by_user ON ledger (user_id, id);
CREATE INDEX ledger_by_kind_created ON ledger (kind, created_at, amount_minor);
