"""Callback data factories. They carry ids only; everything else is looked up again.

Callback data comes from the client and can be forged, so every field is
bounded here: ids are row ids, pages are small, actions are one of a fixed set.
Data that does not fit fails to unpack, no handler sees it, and the customer
gets the "this button is no longer valid" answer.
"""

from __future__ import annotations

from typing import Annotated, Literal

from aiogram.filters.callback_data import CallbackData
from pydantic import Field

from bot.shop import MAX_ROW_ID

RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
Page = Annotated[int, Field(ge=0, le=100_000)]


class MenuCb(CallbackData, prefix="m"):
    action: Literal["home", "shop", "orders", "balance", "help", "admin", "search"]


class LanguageCb(CallbackData, prefix="lg"):
    """A language to switch to (a locale name as the catalogs' folders are named), or
    ``list`` for the picker itself (the menu's 🌐 button)."""

    code: Annotated[str, Field(min_length=2, max_length=10,
                               pattern=r"^([A-Za-z]{2,3}(_[A-Za-z]{2,4})?|list)$")]


class PlatformCb(CallbackData, prefix="p"):
    slug: Annotated[str, Field(max_length=20)]
    page: Page = 0


class CategoryCb(CallbackData, prefix="c"):
    id: RowId
    page: Page = 0


class ServiceCb(CallbackData, prefix="s"):
    ref: RowId


class OrderStartCb(CallbackData, prefix="o"):
    ref: RowId


class FormCb(CallbackData, prefix="f"):
    action: Literal["back", "cancel", "skip", "choice", "confirm", "edit", "resume"]
    value: Annotated[str, Field(max_length=40)] = ""


class OrdersCb(CallbackData, prefix="ol"):
    page: Page = 0


class OrderCb(CallbackData, prefix="oc"):
    id: RowId
    action: Literal["show", "refresh", "refill", "cancel"] = "show"


class UnresolvedCb(CallbackData, prefix="au"):
    id: RowId
    action: Literal["attach", "refund"]


class BalanceCb(CallbackData, prefix="b"):
    page: Page = 0


class ReferralCb(CallbackData, prefix="rf"):
    """The customer's invite screen (the menu's 👥 Invite friends, a commission notice)."""

    action: Literal["show"] = "show"


class ApiCb(CallbackData, prefix="w"):
    """The customer's 🔌 API screen (``/api``, the balance screen's button): show it,
    make a key where there is none, ask to confirm a new key or revoking it and do
    it, turn API orders' notices in the chat on or off. (Not an "a…" prefix: those
    are the admin panel's.)"""

    action: Literal["show", "create", "rotate", "rotate_ok", "revoke", "revoke_ok", "notify_on",
                    "notify_off"] = "show"


class TopupCb(CallbackData, prefix="t"):
    action: Literal["menu", "preset", "other", "shortfall"]
    index: Annotated[int, Field(ge=0, le=20)] = 0  # which of TOPUP_AMOUNTS (a preset)


class PromoCb(CallbackData, prefix="pr"):
    """🎟 Promo code: ask the customer for a code (the balance screen, an order's confirmation)."""

    action: Literal["ask"]


# ------------------------------------------------------------ admin panel
# Every admin factory's prefix starts with "a" (UnresolvedCb above too): the tests
# collect them by that to check that a non-admin can't use any of them.

AdminArea = Literal["home", "dashboard", "catalog", "customers", "orders", "broadcast", "audit",
                    "promo", "referrals", "api"]


class AdminCb(CallbackData, prefix="a"):
    """An admin screen: the menu and each area's first screen (``page`` for lists)."""

    area: AdminArea
    page: Page = 0


class AdminCustomerCb(CallbackData, prefix="ak"):
    """A customer's card and what an admin can do from it (``id``: the Telegram user id)."""

    action: Literal["card", "credit", "debit", "block", "unblock", "referrals_off",
                    "referrals_on", "api_off", "api_on"]
    id: RowId


class AdminOrderCb(CallbackData, prefix="ao"):
    """An order's admin card (``show``), the problem lists, and looking one up."""

    action: Literal["show", "find", "unknown", "flagged", "funds"]
    id: Annotated[int, Field(ge=0, le=MAX_ROW_ID)] = 0


class AdminCatalogCb(CallbackData, prefix="ac"):
    """The admin's catalog: ``id`` is a services.id (service actions) or categories.id."""

    action: Literal["refresh", "find", "global", "card", "hide_s", "show_s", "hide_c", "show_c",
                    "mk_s", "mk_c", "clear_s", "clear_c", "save", "save_below", "backups"]
    id: Annotated[int, Field(ge=0, le=MAX_ROW_ID)] = 0


class AdminBroadcastCb(CallbackData, prefix="abr"):
    """Broadcast screens: start composing, choose the audience, confirm or discard
    the draft, cancel broadcast ``id`` (0 when none is named)."""

    action: Literal["new", "all", "active", "confirm", "discard", "cancel"]
    id: Annotated[int, Field(ge=0, le=MAX_ROW_ID)] = 0


class AdminPromoCb(CallbackData, prefix="apc"):
    """Promo codes (the list is ``AdminCb(area="promo")``): a new one, code ``id``'s card,
    turning it off."""

    action: Literal["new", "card", "off"]
    id: Annotated[int, Field(ge=0, le=MAX_ROW_ID)] = 0


class AdminReferralsCb(CallbackData, prefix="aref"):
    """The Referrals screen for a period: the last 7 or 30 days, or all time."""

    period: Literal["7d", "30d", "all"] = "30d"


class DashboardCb(CallbackData, prefix="adash"):
    """The dashboard's own buttons (its screen is ``AdminCb(area="dashboard")``)."""

    action: Literal["chart"]


class AdminRoutesCb(CallbackData, prefix="art"):
    """A service's backups (the Backups screen is ``AdminCatalogCb(action="backups")``):
    link or unlink backup ``backup`` (services.id) of service ``id``."""

    action: Literal["link", "unlink"]
    id: RowId
    backup: RowId
