-- Users of the storefront. The balance is integer minor units of SHOP_CURRENCY
-- and is only ever changed together with a ledger row (storage/ledger.py).
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,           -- Telegram user id
    username      TEXT,
    first_name    TEXT NOT NULL DEFAULT '',
    language      TEXT,
    balance_minor INTEGER NOT NULL DEFAULT 0 CHECK (balance_minor >= 0),
    blocked       INTEGER NOT NULL DEFAULT 0,    -- the user blocked the bot
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- The cached catalog of every configured panel. Categories and services carry
-- small integer ids so callback data can name them in a few bytes. A service
-- the panel stops listing is kept with active = 0, so old orders stay readable.
CREATE TABLE categories (
    id            INTEGER PRIMARY KEY,
    panel         TEXT NOT NULL,
    name          TEXT NOT NULL,
    platform      TEXT NOT NULL,                 -- slug: instagram, tiktok, ..., other
    UNIQUE (panel, name)
);

CREATE TABLE services (
    id            INTEGER PRIMARY KEY,
    panel         TEXT NOT NULL,
    service_id    TEXT NOT NULL,                 -- the panel's id
    category_id   INTEGER NOT NULL REFERENCES categories (id),
    name          TEXT NOT NULL,
    type          TEXT NOT NULL,                 -- canonical order-type name
    sellable      INTEGER NOT NULL,              -- the type is in the order-type table
    category      TEXT NOT NULL,
    rate          TEXT NOT NULL,                 -- Decimal text, panel currency
    currency      TEXT NOT NULL,
    min_quantity  INTEGER NOT NULL,
    max_quantity  INTEGER NOT NULL,
    refill        INTEGER NOT NULL DEFAULT 0,
    cancel        INTEGER NOT NULL DEFAULT 0,
    dripfeed      INTEGER NOT NULL DEFAULT 0,
    description   TEXT NOT NULL DEFAULT '',
    active        INTEGER NOT NULL DEFAULT 1,
    synced_at     TEXT NOT NULL,
    UNIQUE (panel, service_id)
);
CREATE INDEX services_on_sale ON services (category_id, id) WHERE active = 1 AND sellable = 1;

-- Markup overrides (percent, Decimal text) per category or per service.
CREATE TABLE markups (
    scope   TEXT NOT NULL CHECK (scope IN ('category', 'service')),
    panel   TEXT NOT NULL,
    target  TEXT NOT NULL,                       -- category name or service id
    percent TEXT NOT NULL,
    PRIMARY KEY (scope, panel, target)
) WITHOUT ROWID;

-- Orders and their local lifecycle:
--   submitting -> pending -> in_progress -> completed | partial | canceled | failed
--   submitting -> failed  (panel rejected; refunded)
--   submitting -> unknown (panel outcome unknown; reconciled by an admin)
CREATE TABLE orders (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    token          TEXT NOT NULL UNIQUE,         -- from the draft: one confirm, one order
    user_id        INTEGER NOT NULL REFERENCES users (id),
    panel          TEXT NOT NULL,
    service_ref    INTEGER NOT NULL REFERENCES services (id),
    service_id     TEXT NOT NULL,
    service_name   TEXT NOT NULL,
    order_type     TEXT NOT NULL,
    fields         TEXT NOT NULL,                -- JSON: the form values sent to the panel
    quantity       INTEGER,                      -- NULL for packages
    price_minor    INTEGER NOT NULL CHECK (price_minor >= 0),
    currency       TEXT NOT NULL,
    panel_cost     TEXT,                         -- expected panel charge, Decimal text
    state          TEXT NOT NULL CHECK (state IN ('submitting', 'pending', 'in_progress',
                   'completed', 'partial', 'canceled', 'failed', 'unknown')),
    panel_order_id TEXT,
    panel_status   TEXT,                         -- the panel's raw status word
    start_count    INTEGER,
    remains        INTEGER,
    charge         TEXT,                         -- the panel's charge, Decimal text
    error          TEXT,                         -- the panel's words when it refused
    refreshed_at   REAL,                         -- unix time of the last status call
    cancel_requested_at TEXT,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (panel, panel_order_id)
);
CREATE INDEX orders_by_user ON orders (user_id, id DESC);
CREATE INDEX orders_open ON orders (panel, state)
    WHERE state IN ('submitting', 'pending', 'in_progress', 'unknown');

-- Every change of a balance. idempotency_key makes each credit, debit and refund
-- happen once (for example 'order:42:debit', 'order:42:refund').
CREATE TABLE ledger (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         INTEGER NOT NULL REFERENCES users (id),
    amount_minor    INTEGER NOT NULL CHECK (amount_minor <> 0),
    balance_after   INTEGER NOT NULL CHECK (balance_after >= 0),
    kind            TEXT NOT NULL CHECK (kind IN ('credit', 'debit', 'order', 'refund',
                    'topup', 'topup_refund')),
    idempotency_key TEXT NOT NULL UNIQUE,
    order_id        INTEGER REFERENCES orders (id),
    actor_id        INTEGER,                     -- the admin who credited/debited
    note            TEXT NOT NULL DEFAULT '',
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX ledger_by_user ON ledger (user_id, id);

-- Refill requests made from an order card, followed until final.
CREATE TABLE refills (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id        INTEGER NOT NULL REFERENCES orders (id),
    panel_refill_id TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending',
    panel_status    TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (order_id, panel_refill_id)
);

-- Conversation state (aiogram FSM), so a half-filled form survives a restart.
CREATE TABLE fsm (
    key        TEXT PRIMARY KEY,
    state      TEXT,
    data       TEXT NOT NULL DEFAULT '{}'
) WITHOUT ROWID;
