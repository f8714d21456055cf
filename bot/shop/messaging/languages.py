"""Which language each customer reads: their choice, else their Telegram language.

A customer's Telegram ``language_code`` decides until they pick a language with
/language or the 🌐 button; the choice is stored (``users.chosen_language``) and
wins from then on, in conversations and in everything sent in the background
(notices, refunds, receipts, broadcasts: handlers/outbound/notices.py reads the stored
row). Every update needs the answer, so the choices are read once, in one query,
at first use, and kept in memory; a new choice is written through.
"""

from __future__ import annotations

import asyncio

from storage import users
from storage.db import Database


class LanguageChoices:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._chosen: dict[int, str] | None = None
        self._loading = asyncio.Lock()

    async def chosen(self, user_id: int) -> str | None:
        """The language ``user_id`` picked, or None when they never did."""
        if self._chosen is None:
            async with self._loading:
                if self._chosen is None:
                    self._chosen = await users.chosen_languages(self.db)
        return self._chosen.get(user_id)

    async def choose(self, user_id: int, language: str) -> bool:
        """Store the choice; False when the customer has no account yet (never /start)."""
        stored = await users.choose_language(self.db, user_id, language)
        if stored and self._chosen is not None:
            self._chosen[user_id] = language
        return stored
