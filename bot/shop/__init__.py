"""The shop's capabilities as plain async services (no aiogram below here)."""
