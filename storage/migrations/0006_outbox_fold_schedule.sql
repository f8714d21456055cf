-- When a folding alert row was scheduled to go out (the first of its kind: when
-- raised; a follow-up: the end of its window). A retry moves next_attempt_at,
-- never this, so the fold window is measured from what was scheduled.
ALTER TABLE outbox ADD COLUMN scheduled_at REAL;
UPDATE outbox SET scheduled_at = next_attempt_at WHERE fold_key IS NOT NULL;
DROP INDEX outbox_by_fold_key;
CREATE INDEX outbox_by_fold_key ON outbox (fold_key, scheduled_at) WHERE fold_key IS NOT NULL;
