"""The order form as plain logic: which field comes next, and what an answer means.

The conversation (``handlers/order_form.py``) only stores a ``Draft`` in the FSM
and renders; every rule comes from the order-type table plus the service's
limits and platform.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bot.order_types import N_, FieldError, FieldKind, FormField, OrderType
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

    def to_data(self) -> dict[str, Any]:
        return {"ref": self.ref, "token": self.token, "values": self.values,
                "history": self.history}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Draft | None:
        try:
            return cls(int(data["ref"]), str(data["token"]), dict(data.get("values", {})),
                       list(data.get("history", [])))
        except (KeyError, TypeError, ValueError):
            return None


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
