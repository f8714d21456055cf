-- Routing (issue 22): one shop service on several panels, and what the panels did.

-- A shop service's backups: services of other panels an order may go to when the
-- service's own panel certainly did not take it. position orders the backups of
-- one service (1 first: ROUTING=priority tries them in that order).
CREATE TABLE service_routes (
    service_ref INTEGER NOT NULL REFERENCES services (id),
    backup_ref  INTEGER NOT NULL REFERENCES services (id),
    position    INTEGER NOT NULL CHECK (position > 0),
    created_by  INTEGER NOT NULL DEFAULT 0,      -- the admin (0: the command line)
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (service_ref, backup_ref),
    CHECK (service_ref <> backup_ref)
) WITHOUT ROWID;
CREATE INDEX service_routes_by_backup ON service_routes (backup_ref);

-- What a catalog refresh found changed, kept until the admins' digest told them:
-- a service added or removed, its cost up or down by more than
-- PRICE_ALERT_PERCENT, a link whose backup disappeared, a service hidden because
-- it would sell at a loss (or shown again). old_rate/new_rate are Decimal text in
-- the panel's currency.
CREATE TABLE catalog_changes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    panel       TEXT NOT NULL,
    service_ref INTEGER REFERENCES services (id),
    kind        TEXT NOT NULL CHECK (kind IN ('added', 'removed', 'cost_up', 'cost_down',
                'backup_gone', 'hidden_at_loss', 'shown_again')),
    old_rate    TEXT,
    new_rate    TEXT,
    linked      INTEGER NOT NULL DEFAULT 0,       -- the service has backups or is one
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    told_at     TEXT                              -- in a digest sent to the admins
);
CREATE INDEX catalog_changes_untold ON catalog_changes (id) WHERE told_at IS NULL;

-- A service hidden by the shop itself because its cost now exceeds what it sells
-- for (not an admin's `hidden`): shown again by the refresh that finds it fixed.
ALTER TABLE services ADD COLUMN hidden_at_loss INTEGER NOT NULL DEFAULT 0;

-- The panel an order was first sent to, when a backup holds it now (NULL: it is
-- where it was first sent), and why it moved (a RejectReason value, 'unavailable'
-- or 'down'). orders.panel and orders.service_id are always the holder's.
ALTER TABLE orders ADD COLUMN first_panel TEXT;
ALTER TABLE orders ADD COLUMN failover_reason TEXT;
