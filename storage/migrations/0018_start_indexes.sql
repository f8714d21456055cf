-- Start-up and the first update read no whole table (issue 24): the count of
-- orders in doubt (reported to the admins at every start) and the blocked
-- customers (read at the first update) each get a small partial index.
CREATE INDEX orders_unknown ON orders (state, id) WHERE state = 'unknown';
CREATE INDEX users_banned ON users (id) WHERE banned_at IS NOT NULL;
