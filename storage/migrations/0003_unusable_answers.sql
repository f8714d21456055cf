-- Status answers the bot could not use for an order: an item it could not read
-- (no status, a number out of bounds...), a Partial without remains (the refund
-- can't be known), or any item error other than "Incorrect order ID" (counted by
-- missing_polls). The order keeps its state; at MISSING_POLLS in a row it is
-- flagged to the admins once, with the last such answer as the panel sent it.
ALTER TABLE orders ADD COLUMN unusable_polls INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN unusable_answer TEXT;  -- redacted, at most 1,000 characters
ALTER TABLE orders ADD COLUMN unusable_flagged_at TEXT;
