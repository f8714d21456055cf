-- Alerts that matter and the daily summary (bot/shop/backoffice/panel_watch.py, bot/shop/backoffice/daily_report.py).

-- What the panel watch last knew of each panel and which alerts are standing, so
-- a restart neither repeats an alert nor forgets one that is due.
--   low_alerted_at: the low-balance alert was sent; cleared (re-armed) when the
--                   balance is back at or above PANEL_BALANCE_ALERT.
--   down_since:     unix time of the first failed check of the current outage.
--   down_alerted_at: the "unreachable" alert was sent; the "back" alert clears it.
CREATE TABLE panel_watch (
    panel            TEXT PRIMARY KEY,
    balance          TEXT,                  -- Decimal text, panel currency, last read
    currency         TEXT,
    checked_at       REAL,                  -- unix time of the last successful check
    low_alerted_at   REAL,
    down_since       REAL,
    down_error       TEXT,
    down_alerted_at  REAL
) WITHOUT ROWID;

-- One row per shop-time-zone day whose summary was queued, written in the same
-- transaction as its outbox rows: sent once per day, restarts included.
CREATE TABLE daily_reports (
    day       TEXT PRIMARY KEY,             -- YYYY-MM-DD, the day reported on
    queued_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) WITHOUT ROWID;
