-- Start-up reads no whole table (issue 24), continued: measured on 1M orders.
-- The tracker's read of the orders a panel is working on used the (panel,
-- panel_order_id) unique index, walking every order the panel ever had (250 ms
-- in front of the first update); the orders a stopped process left in
-- 'submitting' were found by a scan of the table (60-130 ms at every start).
CREATE INDEX orders_tracked ON orders (panel, id)
    WHERE state IN ('pending', 'in_progress') AND panel_order_id IS NOT NULL;
CREATE INDEX orders_submitting ON orders (id) WHERE state = 'submitting';
