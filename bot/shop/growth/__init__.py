"""Growth: referrals and promo codes."""
