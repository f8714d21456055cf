"""Amounts, balances, Stars top-ups and their reconciliation, formatting.

``HistoryEntry`` (a line of a customer's balance history) is given here for the
screens that show it, so they need not reach into storage for its type.
"""

from storage.ledger import HistoryEntry

__all__ = ["HistoryEntry"]
