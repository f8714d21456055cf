"""Telegram's list of the bot's Star transactions, as the reconciliation reads it
(bot/shop/money/reconcile.py): ``getStarTransactions`` one page at a time, each
transaction read on its own."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot
from aiogram.methods import GetStarTransactions
from aiogram.types import AffiliateInfo, TransactionPartnerUser
from aiogram.types import StarTransaction as TelegramStarTransaction
from pydantic import ValidationError

from bot.shop.money.reconcile import Fetch, StarPage, StarTransaction

log = logging.getLogger(__name__)


class StarTransactionsAsJson(GetStarTransactions):
    """``getStarTransactions`` with its transactions left as JSON. aiogram validates
    a whole answer at once, so one transaction it cannot read (a partner type newer
    than this aiogram, a field of another shape) would fail the page: each is
    validated alone instead (``telegram_transactions``)."""

    __returning__ = dict[str, Any]


NANOSTARS = 1_000_000_000  # in a Star


def telegram_transactions(bot: Bot) -> Fetch:
    """``getStarTransactions`` as the reconciliation reads it (bot/shop/money/reconcile.py): a
    transaction that cannot be read is skipped and counted, not the page."""

    async def fetch(offset: int, limit: int) -> StarPage:
        answer = await bot(StarTransactionsAsJson(offset=offset, limit=limit))
        items = answer.get("transactions")
        if not isinstance(items, list):  # not a page at all: the run can't go on
            raise ValueError("getStarTransactions answered without a list of transactions")
        found: list[StarTransaction] = []
        unreadable: list[str | None] = []
        for item in items:
            try:
                found.append(_transaction(TelegramStarTransaction.model_validate(
                    item, context={"bot": bot})))
            except ValidationError:
                raw_id = item.get("id") if isinstance(item, dict) else None
                unreadable.append(raw_id if isinstance(raw_id, str) else None)
        if unreadable:
            log.warning("getStarTransactions: %d transaction(s) at offset %d could not be read"
                        " and were skipped", len(unreadable), offset)
        return StarPage(found, len(items), tuple(unreadable))

    return fetch


def _transaction(item: TelegramStarTransaction) -> StarTransaction:
    """A user's payment (an incoming ``invoice_payment``) or a refund (outgoing to a
    user: a refund has its payment's id, so anything else sent to a user, a gift,
    matches no charge); anything else (a payout, an ad, the bot's own commission
    from an affiliate program) is neither: no user. The affiliate in a payment's
    ``AffiliateInfo`` is never taken for the payer."""
    source, receiver = item.source, item.receiver
    date = item.date.timestamp()
    if isinstance(receiver, TransactionPartnerUser):
        return StarTransaction(item.id, int(item.amount), receiver.user.id, True, date,
                               _with_affiliate(item, receiver.affiliate))
    if isinstance(source, TransactionPartnerUser) and source.transaction_type == "invoice_payment":
        return StarTransaction(item.id, int(item.amount), source.user.id, False, date,
                               _with_affiliate(item, source.affiliate))
    return StarTransaction(item.id, int(item.amount), None, False, date)


def _with_affiliate(item: TelegramStarTransaction, affiliate: AffiliateInfo | None) -> int | None:
    """The payer's whole Stars when an affiliate took a commission: the bot's share
    and the affiliate's (negative on a refund: given back), each whole Stars plus
    nanostars, rounded to the nearest Star."""
    if affiliate is None:
        return None
    bots = int(item.amount) * NANOSTARS + (item.nanostar_amount or 0)
    affiliates = abs(int(affiliate.amount) * NANOSTARS + (affiliate.nanostar_amount or 0))
    return (bots + affiliates + NANOSTARS // 2) // NANOSTARS
