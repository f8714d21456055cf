-- The admin dashboard (issue 11): what each order cost the shop at its panel, in
-- exact shop minor units, so the panel cost is an integer SUM (never Decimal text
-- summed as REAL). fx_rate is the panel -> shop rate when the order was placed
-- (Decimal text); cost_minor is the panel's charge (or, until it reports one,
-- the expected panel_cost) times that rate, rounded half up. Rows older than
-- this migration get both once, in Python (bot/shop/backoffice/stats.py backfill_costs).
ALTER TABLE orders ADD COLUMN fx_rate TEXT;
ALTER TABLE orders ADD COLUMN cost_minor INTEGER;
CREATE INDEX orders_costless ON orders (id) WHERE cost_minor IS NULL;
-- Period aggregates: a range of created_at, covering what the sums read.
CREATE INDEX orders_by_created ON orders (created_at, state, price_minor, cost_minor);
CREATE INDEX ledger_by_kind_created ON ledger (kind, created_at, amount_minor);
CREATE INDEX topups_paid ON topups (paid_at, amount_minor) WHERE state = 'paid';
