"""Outbox rows as Telegram messages: rendered in the recipient's language at send
time, with the order's buttons, and Telegram's answers turned into the
notifier's outcomes (bot/shop/messaging/notifier.py).

A row that cannot be written in the recipient's language (a translation the
start-up check could not catch, a payload the text does not expect) is written
in English instead, and the admins are told; one that cannot be written at all
is closed as failed. Retrying would fail the same way for ever. Only the
database's errors while reading what to say are worth a retry.
"""

from __future__ import annotations

import logging
import sqlite3
import traceback

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.shop.backoffice.daily_report import Report
from bot.shop.messaging import OutboxRow
from bot.shop.messaging.alerts import Alert, no_alert
from bot.shop.messaging.alerts import render as render_alert
from bot.shop.messaging.broadcasts import Broadcast, Broadcasts
from bot.shop.messaging.notifier import PermanentFailure, RecipientGone, RetryAfter, TemporaryFailure
from bot.shop.money.accounts import Accounts
from bot.shop.orders import StoredOrder
from bot.shop.orders.service import OrderActions, OrderService
from bot.shop.routing.changes import Digest
from handlers.callbacks import OrderCb
from handlers.middlewares.errors import error_kind
from handlers.middlewares.i18n import locale_for
from handlers.views.keyboards import button, keyboard
from handlers.views.orders import order_action_buttons
from handlers.views.referrals import commission_notice
from handlers.views.text import money, number, panel_text

log = logging.getLogger(__name__)

Rendered = tuple[str, InlineKeyboardMarkup | None]


class TelegramDelivery:
    """The notifier's ``Deliver``: one outbox row, one ``sendMessage`` (a broadcast's
    copy: ``sendPhoto`` when it is a photo). ``accounts`` gives the recipient's
    language, ``orders`` and ``broadcasts`` what the row is about. ``alert`` tells
    the admins of a row that could not be written in its recipient's language."""

    def __init__(self, bot: Bot, i18n: I18n, orders: OrderService, accounts: Accounts,
                 broadcasts: Broadcasts, *, alert: Alert = no_alert) -> None:
        self.bot = bot
        self.i18n = i18n
        self.orders = orders
        self.accounts = accounts
        self.broadcasts = broadcasts
        self.alert = alert
        self._broadcasts: dict[int, Broadcast] = {}

    async def __call__(self, row: OutboxRow) -> None:
        user = await self.accounts.get(row.chat_id)
        rendered = await self._render_safely(row, locale_for(self.i18n,
                                                             user.speaks if user else None))
        if rendered is None:
            raise PermanentFailure("nothing to say: the order is gone")
        text, markup = rendered
        try:
            if row.kind == "broadcast":
                await self._broadcast(row)
            else:
                await self.bot.send_message(row.chat_id, text, reply_markup=markup)
        except TelegramRetryAfter as exc:
            raise RetryAfter(exc.retry_after) from None
        except TelegramForbiddenError as exc:
            raise RecipientGone(exc.message) from None
        except (TelegramNetworkError, TelegramServerError) as exc:
            raise TemporaryFailure(exc.message) from None
        except (TelegramUnauthorizedError, TelegramNotFound) as exc:
            # A revoked token or a wrong API address: nothing is sendable until it is fixed.
            raise TemporaryFailure(exc.message) from None
        except TelegramBadRequest as exc:
            if "chat not found" in exc.message.lower() or "user is deactivated" in exc.message:
                raise RecipientGone(exc.message) from None
            raise PermanentFailure(exc.message) from None

    async def _broadcast(self, row: OutboxRow) -> None:
        """A broadcast's copy: its row is closed before the send (bot/shop/messaging/broadcasts.py), so
        no restart sends it twice; reopened when Telegram refused it, for the
        notifier to retry or drop."""
        broadcast = self._broadcasts.get(row.broadcast_id or 0)
        if broadcast is None:
            broadcast = await self.broadcasts.get(row.broadcast_id or 0)
            if broadcast is None:
                raise PermanentFailure("the broadcast is gone")
            self._broadcasts[broadcast.id] = broadcast  # its content never changes
        if not await self.broadcasts.claim(row.id):
            raise TemporaryFailure("the broadcast was canceled")  # nothing left to retry
        try:
            if broadcast.photo is not None:
                await self.bot.send_photo(row.chat_id, broadcast.photo,
                                          caption=broadcast.text or None)
            else:
                await self.bot.send_message(row.chat_id, broadcast.text)
        except TelegramNetworkError:
            raise  # it may have arrived: the row stays closed (at most one copy)
        except TelegramAPIError:
            await self.broadcasts.release(row.id)  # Telegram answered: not sent
            raise

    async def _render_safely(self, row: OutboxRow, locale: str) -> Rendered | None:
        """The row in ``locale``, else in English; PermanentFailure when neither works."""
        try:
            return await self._render_in(row, locale)
        except sqlite3.Error:
            raise  # the database was busy or failing: the notifier tries again later
        except Exception as exc:
            failure = exc
            log.exception("outbox row %d (%s) could not be written in %s", row.id, row.kind,
                          locale)
        english = self.i18n.default_locale
        if locale != english:
            try:
                rendered = await self._render_in(row, english)
            except sqlite3.Error:
                raise
            except Exception:
                log.exception("outbox row %d (%s) could not be written in %s either", row.id,
                              row.kind, english)
            else:
                await self._alert_unwritable(row, locale, failure, f"sent in {english} instead")
                return rendered
        await self._alert_unwritable(row, locale, failure, "not sent")
        raise PermanentFailure(f"cannot be written: {type(failure).__name__}: {failure}")

    async def _alert_unwritable(self, row: OutboxRow, locale: str, failure: Exception,
                                outcome: str) -> None:
        summary = f"{type(failure).__name__}: {failure}".splitlines()[0]
        # Folded per language and per place in the code: a broken text is one
        # alert per 5 minutes, however many customers it was meant for.
        await self.alert(
            f"🌐 A {row.kind} message to {row.chat_id} could not be written in {locale}"
            f" ({summary}); {outcome}.",
            details="".join(traceback.format_exception(failure)),
            key=f"🌐 unwritable {locale} {error_kind(failure)}")

    async def _render_in(self, row: OutboxRow, locale: str) -> Rendered | None:
        with self.i18n.context(), self.i18n.use_locale(locale):
            return await self._render(row)

    async def _render(self, row: OutboxRow) -> Rendered | None:
        if row.kind == "broadcast":
            return "", None  # sent as stored (_broadcast)
        if row.kind == "alert" and "broadcast_summary" in row.payload:
            from handlers.views.broadcast import summary_text

            broadcast = await self.broadcasts.get(int(row.payload["broadcast_summary"]))
            if broadcast is None:
                return None
            return summary_text(broadcast, await self.broadcasts.counts(broadcast)), None
        if row.kind == "alert" and "catalog_digest" in row.payload:
            from handlers.views.catalog_digest import digest_text

            return digest_text(Digest.from_payload(row.payload["catalog_digest"])), None
        if row.kind == "alert" and "daily_report" in row.payload:
            from handlers.views.dashboard import daily_summary_text

            return daily_summary_text(Report.from_payload(row.payload["daily_report"])), None
        if row.kind == "alert":
            return render_alert(row.payload), None
        if row.kind == "referral":
            return commission_notice(row.payload)
        order = await self.orders.get(row.order_id or 0)
        if order is None:
            return None
        if row.kind == "refill":
            return refill_text(order, str(row.payload.get("state"))), notice_keyboard(order)
        markup = notice_keyboard(order, await self.orders.actions(order))
        return order_notice_text(order, row.payload), markup


def order_notice_text(order: StoredOrder, payload: dict) -> str:
    state = str(payload.get("state"))
    head = {
        "pending": _("🕓 Order #{id} is with the supplier and will start soon."),
        "in_progress": _("🔄 Order #{id} has started."),
        "completed": _("✅ Order #{id} is complete."),
        "partial": _("🌗 Order #{id} was partly delivered."),
        "canceled": _("↩️ Order #{id} was canceled by the supplier."),
        "failed": _("❌ Order #{id} could not be done."),
    }.get(state, _("Order #{id} was updated."))
    if state == "canceled" and order.cancel_requested:
        head = _("↩️ Order #{id} was canceled, as you asked.")
    lines = [head.format(id=order.id), panel_text(order.service_name)]
    remains = payload.get("remains")
    if state == "partial" and order.quantity and remains is not None:
        delivered = max(0, order.quantity - int(remains))
        lines.append(_("Delivered: {delivered} of {quantity}.").format(
            delivered=number(delivered), quantity=number(order.quantity)))
    elif state == "in_progress" and payload.get("start_count") is not None:
        lines.append(_("Start count: {count}").format(count=number(int(payload['start_count']))))
    refund = int(payload.get("refund_minor") or 0)
    if refund:
        lines.append("")
        lines.append(_("💸 Refunded {amount}.").format(amount=money(refund, order.currency)))
        if payload.get("balance_minor") is not None:
            lines.append(_("Your balance: {balance}").format(
                balance=money(int(payload["balance_minor"]), order.currency)))
    return "\n".join(lines)


def refill_text(order: StoredOrder, state: str) -> str:
    if state == "completed":
        text = _("♻️ The refill of order #{id} is done.")
    else:
        text = _("The supplier turned down the refill of order #{id}.")
    return f"{text.format(id=order.id)}\n{panel_text(order.service_name)}"


def notice_keyboard(order: StoredOrder,
                    allowed: OrderActions | None = None) -> InlineKeyboardMarkup:
    """Open the order, and refill / cancel where ``allowed`` says it can be now."""
    actions = order_action_buttons(order, allowed) if allowed else []
    return keyboard([button(_("📄 Open order #{id}").format(id=order.id), OrderCb(id=order.id))],
                    actions)
