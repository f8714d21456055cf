"""What the bot sends on its own through Telegram (outbox delivery, progress)."""
