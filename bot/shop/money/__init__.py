"""Amounts, balances, Stars top-ups and their reconciliation, formatting."""
