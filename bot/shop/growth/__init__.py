"""Growth: referrals, promo codes and loyalty tiers, each paid only on real money
and never charging more than the customer was shown."""
