-- The outbox read in priority order and fairly across chats, and admin alerts
-- folded by kind (issue 9, item 14).

-- Lower goes first: 0 a customer's own messages (order notices, refills),
-- 1 admin alerts, 2 broadcasts (not yet written). Set from the kind when a row is
-- queued (storage/outbox.py PRIORITY).
ALTER TABLE outbox ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
UPDATE outbox SET priority = 1 WHERE kind = 'alert';

-- An alert's kind (bot/shop/messaging/alerts.py): the first of a kind goes out at once; the
-- rest within the window fold into one follow-up row, due at the window's end.
ALTER TABLE outbox ADD COLUMN fold_key TEXT;
CREATE INDEX outbox_by_fold_key ON outbox (fold_key, next_attempt_at)
    WHERE fold_key IS NOT NULL;

-- The due-rows read takes a few rows per chat in (priority, id) order; this
-- index also serves "everything pending for this chat" (a user who blocked us).
DROP INDEX outbox_by_chat;
CREATE INDEX outbox_pending_by_chat ON outbox (chat_id, priority, id) WHERE state = 'pending';
