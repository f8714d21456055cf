-- The durable inbox (issue 19): every update Telegram delivers is written here
-- before Telegram is told it arrived (the webhook's 200, the next getUpdates
-- offset), and marked handled when its handler is done. Rows not handled when
-- the bot stopped are handled first at the next start, in arrival order (seq).
-- A second delivery of an update (the same update_id and body) is not stored.
CREATE TABLE inbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    update_id INTEGER NOT NULL,
    body TEXT NOT NULL,
    received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    handled_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX inbox_update_id ON inbox (update_id);
CREATE INDEX inbox_unhandled ON inbox (seq) WHERE handled_at IS NULL;
CREATE INDEX inbox_handled_at ON inbox (handled_at) WHERE handled_at IS NOT NULL;
