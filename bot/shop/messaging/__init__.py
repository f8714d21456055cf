"""Admin alerts, the outbox sender, broadcasts, customers' languages."""
