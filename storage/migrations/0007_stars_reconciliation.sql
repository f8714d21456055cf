-- What the Stars reconciliation (bot/shop/money/reconcile.py) has told the admins, so each
-- difference between Telegram's transactions and the ledger is reported once.
CREATE TABLE reconcile_reports (
    kind       TEXT NOT NULL,   -- uncredited | unknown_credit | amount | unbooked_refund | refund_not_made
    charge_id  TEXT NOT NULL,
    reported_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (kind, charge_id)
) WITHOUT ROWID;
