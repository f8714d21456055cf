"""The order form as plain logic: which field comes next, and what an answer means.

The conversation (``handlers/customer/order_form.py``) only stores a ``Draft`` in the FSM
and renders; every rule comes from the order-type table plus the service's
limits and platform.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bot.panel.order_types import N_, FieldError, FieldKind, FormField, OrderType
from storage.catalog import StoredService

# Links on a known platform must point at one of its domains.
PLATFORM_DOMAINS: dict[str, tuple[str, ...]] = {
    "instagram": ("instagram.com", "instagr.am"),
    "tiktok": ("tiktok.com",),
    "youtube": ("youtube.com", "youtu.be"),
    "telegram": ("t.me", "telegram.me", "telegram.org", "telegram.dog"),
    "facebook": ("facebook.com", "fb.com", "fb.watch", "fb.me"),
    "twitter": ("twitter.com", "x.com", "t.co"),
    "spotify": ("spotify.com", "spotify.link"),
    "twitch": ("twitch.tv",),
    "discord": ("discord.gg", "discord.com"),
}
_TELEGRAM_HANDLE = re.compile(r"^@([A-Za-z][A-Za-z0-9_]{3,31})$")
_LINK_FIELDS = {"link"}


@dataclass
class Draft:
    """An order being filled in; lives in the FSM data as a plain dict."""

    ref: int
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    values: dict[str, str] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)  # fields answered, in order
    # The price on the confirmation screen the customer last saw: Confirm never
    # charges more than this (``OrderService.place``).
    shown_price: int | None = None
    # Names that confirmation screen; its Confirm button carries it, so a tap on an
    # older confirmation (of this form before a change, or of another form) is
    # told apart from a tap on the one the draft is now.
    screen: str = ""

    def to_data(self) -> dict[str, Any]:
        return {"ref": self.ref, "token": self.token, "values": self.values,
                "history": self.history, "shown_price": self.shown_price, "screen": self.screen}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Draft | None:
        try:
            shown = data.get("shown_price")
            return cls(int(data["ref"]), str(data["token"]), dict(data.get("values", {})),
                       list(data.get("history", [])), None if shown is None else int(shown),
                       str(data.get("screen", "")))
        except (KeyError, TypeError, ValueError):
            return None

    def show_confirmation(self, price_minor: int) -> str:
        """Record a confirmation screen being shown; returns its name for the button."""
        self.shown_price = price_minor
        self.screen = secrets.token_hex(4)
        return self.screen

    def leave_confirmation(self) -> None:
        """Back to a field (Edit, Back, a field that no longer fits): no confirmation
        is on screen, so no Confirm button matches the draft any more."""
        self.shown_price = None
        self.screen = ""


def order_type_of(stored: StoredService) -> OrderType:
    order_type = stored.service.order_type
    if order_type is None:
        raise LookupError(stored.ref)
    return order_type


def next_field(stored: StoredService, draft: Draft) -> FormField | None:
    """The first field still to ask; ``None`` when the form is complete."""
    for spec in order_type_of(stored).form(draft.values, stored.service.limits):
        if spec.name not in draft.values:
            return spec
    return None


def step_of(stored: StoredService, draft: Draft) -> tuple[int, int]:
    """(this step, steps in all) for the progress line."""
    form = order_type_of(stored).form(draft.values, stored.service.limits)
    return min(len(draft.history) + 1, len(form)), len(form)


def accept(stored: StoredService, draft: Draft, spec: FormField, text: str) -> None:
    """Validate ``text`` for ``spec`` and record it; raises ``FieldError``, changing nothing."""
    if spec.name in _LINK_FIELDS and stored.platform == "telegram":
        handle = _TELEGRAM_HANDLE.match(text.strip())
        if handle:
            text = f"https://t.me/{handle.group(1)}"
    value = spec.parse(text)
    if spec.kind is FieldKind.URL and spec.name in _LINK_FIELDS:
        _check_platform(stored.platform, spec, value)
    candidate = {**draft.values, spec.name: value}
    order_type_of(stored).check_field(spec.name, candidate, stored.service.limits)
    draft.values[spec.name] = value
    draft.history.append(spec.name)


def skip(draft: Draft, spec: FormField) -> None:
    if spec.required:
        raise FieldError(spec.name, N_("This one can't be skipped."))
    draft.values[spec.name] = ""
    draft.history.append(spec.name)


def refit(stored: StoredService, draft: Draft) -> FieldError | None:
    """Check every answer again against the service as it is now (its limits and
    options may have changed since the form was filled: a catalog refresh).

    The answers are replayed in the order the form asks them. Answers to fields
    that no longer apply (drip-feed withdrawn) are dropped; the replay stops at
    the first answer that no longer fits, which is returned, so the form asks
    that field again (later answers are asked again too). ``None`` when
    everything still fits.
    """
    answers = {name: draft.values[name] for name in draft.history if name in draft.values}
    draft.values.clear()
    draft.history.clear()
    while (spec := next_field(stored, draft)) is not None and spec.name in answers:
        value = answers.pop(spec.name)
        try:
            if value == "":
                skip(draft, spec)
            else:
                accept(stored, draft, spec, value)
        except FieldError as exc:
            return exc
    if next_field(stored, draft) is None:
        try:
            order_type_of(stored).validate(draft.values, stored.service.limits)
        except FieldError as exc:
            # A rule across fields: ask the named field (and what came after it) again.
            if exc.field_name in draft.history:
                del draft.history[draft.history.index(exc.field_name):]
            draft.values = {k: v for k, v in draft.values.items() if k in draft.history}
            return exc
    return None


def back(draft: Draft) -> bool:
    """Forget the last answer; ``False`` when there was none (leave the form)."""
    if not draft.history:
        return False
    name = draft.history.pop()
    draft.values.pop(name, None)
    # Answers that only applied because of the removed one go too.
    for later in [k for k in draft.values if k not in draft.history]:
        draft.values.pop(later)
    return True


def _check_platform(platform: str, spec: FormField, url: str) -> None:
    domains = PLATFORM_DOMAINS.get(platform)
    if not domains:
        return
    host = (urlsplit(url).hostname or "").lower()
    if not any(host == d or host.endswith("." + d) for d in domains):
        raise FieldError(spec.name, N_("This service needs a link on {domains}."),
                         domains=", ".join(domains[:2]))
