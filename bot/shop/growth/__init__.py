"""Growth: what brings customers and keeps them (issue 21): referrals, promo codes,
discounts and loyalty tiers. Money services never import this package; what they
must call (a top-up's commission) is handed to them at the composition root."""
