"""The shop's capabilities as plain async services (no aiogram below here).

``is_row_id`` and ``MAX_ROW_ID`` are storage's own (storage/db.py), given here
so the handlers check ids from callback data against what the database can
hold without importing storage themselves.
"""

from storage.db import MAX_ROW_ID, is_row_id

__all__ = ["MAX_ROW_ID", "is_row_id"]
