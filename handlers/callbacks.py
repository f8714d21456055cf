"""Callback data factories. They carry ids only; everything else is looked up again."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class MenuCb(CallbackData, prefix="m"):
    action: str  # home | shop | orders | balance | help | admin | search


class PlatformCb(CallbackData, prefix="p"):
    slug: str
    page: int = 0


class CategoryCb(CallbackData, prefix="c"):
    id: int
    page: int = 0


class ServiceCb(CallbackData, prefix="s"):
    ref: int


class OrderStartCb(CallbackData, prefix="o"):
    ref: int


class FormCb(CallbackData, prefix="f"):
    action: str  # back | cancel | skip | choice | confirm | edit
    value: str = ""


class OrdersCb(CallbackData, prefix="ol"):
    page: int = 0


class OrderCb(CallbackData, prefix="oc"):
    id: int
    action: str = "show"  # show | refresh | refill | cancel


class UnresolvedCb(CallbackData, prefix="au"):
    id: int
    action: str  # attach | refund
