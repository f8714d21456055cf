"""The order form as plain logic: which field comes next, and what an answer means.

The conversation (``handlers/customer/order_form.py``) only stores a ``Draft`` in the FSM
and renders; every rule comes from the order-type table plus the service's
limits and platform. ``advance`` takes one answer and says what the customer sees
next; ``OrderService.next_step`` adds what needs the database (the service as it
is now, the quote, the balance), so the conversation makes one call per update.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bot.panel.order_types import N_, AboveMaximum, FieldError, FieldKind, FormField, LinkTo, OrderType
from bot.shop.catalog.pricing import Quote
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
# Example links per platform, (a profile, a post): a form shows its own platform's,
# not Instagram's on a TikTok or website form. "web" is a website's own page.
EXAMPLE_LINKS: dict[str, tuple[str, str]] = {
    "instagram": ("https://instagram.com/username", "https://instagram.com/p/..."),
    "tiktok": ("https://tiktok.com/@username", "https://tiktok.com/@username/video/..."),
    "youtube": ("https://youtube.com/@channel", "https://youtube.com/watch?v=..."),
    "telegram": ("https://t.me/channel", "https://t.me/channel/123"),
    "facebook": ("https://facebook.com/page", "https://facebook.com/page/posts/..."),
    "twitter": ("https://x.com/username", "https://x.com/username/status/..."),
    "spotify": ("https://open.spotify.com/artist/...", "https://open.spotify.com/track/..."),
    "twitch": ("https://twitch.tv/channel", "https://twitch.tv/videos/..."),
    "discord": ("https://discord.gg/invite", "https://discord.gg/invite"),
    "web": ("https://your-site.com", "https://your-site.com/page"),
}
ANY_PAGE = "https://example.com/page"  # a referrer, or a platform the shop doesn't know
# A service grows a profile (an account, channel, page) when its name says one of these;
# otherwise its link is to a post (likes, views, comments...).
_PROFILE_WORDS = frozenset({"follower", "followers", "subscriber", "subscribers", "subs",
                            "member", "members", "listeners", "friends", "profile", "channel",
                            "page", "story", "stories"})
_TELEGRAM_HANDLE = re.compile(r"^@([A-Za-z][A-Za-z0-9_]{3,31})$")
_LINK_FIELDS = {"link"}
# Longer typed answers are refused before any field reads them (the longest field
# takes 20,000 characters; Telegram sends at most 4,096 per message).
MAX_TYPED_ANSWER = 20_000


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


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a draft is: what the button that takes the customer back to it says."""

    service: str  # the service's name, as the panel gives it
    step: int
    steps: int
    complete: bool  # every field is answered: the confirmation is what is left


def progress(stored: StoredService, draft: Draft) -> Progress:
    step, steps = step_of(stored, draft)
    return Progress(stored.service.name, step, steps, next_field(stored, draft) is None)


def example_for(stored: StoredService, spec: FormField) -> str:
    """The example a field's prompt shows: for a link, one on the service's platform
    (a profile or a post, as the service grows one); else the table's example."""
    if spec.link_to is None:
        return spec.example
    links = EXAMPLE_LINKS.get(stored.platform)
    if spec.link_to is LinkTo.PAGE or links is None:
        return ANY_PAGE
    if spec.link_to is LinkTo.TARGET:
        words = set(re.findall(r"[a-z]+", stored.service.name.lower()))
        return links[0] if words & _PROFILE_WORDS else links[1]
    return links[0] if spec.link_to is LinkTo.PROFILE else links[1]


def accept(stored: StoredService, draft: Draft, spec: FormField, text: str) -> None:
    """Validate ``text`` for ``spec`` and record it; raises ``FieldError``, changing nothing."""
    if spec.name in _LINK_FIELDS and stored.platform == "telegram":
        handle = _TELEGRAM_HANDLE.match(text.strip())
        if handle:
            text = f"https://t.me/{handle.group(1)}"
    try:
        value = spec.parse(text)
    except AboveMaximum as error:
        raise order_type_of(stored).above_maximum(error, stored.service.limits) from None
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


def fill(stored: StoredService, given: Mapping[str, str]) -> dict[str, str]:
    """A whole form at once (the wholesale API's ``add``): each field the service's
    type asks, in the order the conversation asks it, read from ``given`` by its API
    v2 name and checked as a typed answer would be; fields the type does not take
    are ignored, but drip-feed fields on a service without drip-feed are refused (as
    panels refuse them): dropped, the order would run once where ``runs`` asked for
    more. Raises ``FieldError`` for the first field that does not fit."""
    if not stored.service.limits.dripfeed:
        for spec in order_type_of(stored).fields:
            if spec.dripfeed and given.get(spec.name, "").strip():
                raise FieldError(spec.name, N_("This service does not support drip-feed."))
    draft = Draft(stored.ref)
    while (spec := next_field(stored, draft)) is not None:
        text = given.get(spec.name, "")
        if len(text) > MAX_TYPED_ANSWER:
            raise FieldError(spec.name, N_("That message is too long."))
        if text.strip():
            accept(stored, draft, spec, text)
        elif spec.required:
            raise FieldError(spec.name, N_("This field is required."))
        else:
            skip(draft, spec)
    order_type_of(stored).validate(draft.values, stored.service.limits)
    return draft.values


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


# ------------------------------------------------------------------ one step
# What the customer did, as the conversation parsed it from one update.


@dataclass(frozen=True, slots=True)
class Typed:
    """A text message answering the field being asked."""

    text: str


@dataclass(frozen=True, slots=True)
class Picked:
    """A choice button of the field being asked (its value)."""

    value: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """The Skip button of an optional field."""


@dataclass(frozen=True, slots=True)
class WentBack:
    """The Back button: forget the last answer."""


@dataclass(frozen=True, slots=True)
class StartedOver:
    """Edit on the confirmation: every field again, from the first (same token)."""


# ``None``: no answer, show the form where it is (a new form, after a top-up, a
# confirmation that was out of date or could not be placed).
Answer = Typed | Picked | Skipped | WentBack | StartedOver | None


# What the customer sees next.


@dataclass(frozen=True, slots=True)
class AskField:
    """Ask ``field``, step ``step`` of ``steps``.

    ``wrong_answer``: the answer just given was not taken, and why; the draft is
    as it was, so there is nothing new to store. ``no_longer_fits``: an earlier
    answer the service as it is now refuses (a catalog refresh), so that field is
    asked again; the draft has changed.
    """

    stored: StoredService
    draft: Draft
    field: FormField
    step: int
    steps: int
    wrong_answer: FieldError | None = None
    no_longer_fits: FieldError | None = None


@dataclass(frozen=True, slots=True)
class FormComplete:
    """Every field is answered and fits the service as it is now: what ``advance``
    says before the service prices it (``OrderService.next_step`` turns it into
    ``ConfirmOrder``)."""

    stored: StoredService
    draft: Draft


@dataclass(frozen=True, slots=True)
class ConfirmOrder:
    """Show the confirmation: everything on it, as priced now.

    ``draft`` has recorded the screen (``Draft.show_confirmation``): its price is
    the most Confirm will charge, its name goes on the Confirm button.
    """

    stored: StoredService
    draft: Draft
    quote: Quote  # the price (at the shop's markup) and the total quantity
    balance_minor: int  # the customer's balance now

    @property
    def shortfall_minor(self) -> int:
        """How much the balance is short of the price (0 when it is enough)."""
        return max(0, self.quote.price_minor - self.balance_minor)


@dataclass(frozen=True, slots=True)
class FormLeft:
    """Back from the first field: the form is over, the customer is back at the service."""

    stored: StoredService


@dataclass(frozen=True, slots=True)
class NothingToAnswer:
    """A field's button tapped when no field is being asked (a keyboard left on
    screen from before): nothing changes, nothing is shown."""


@dataclass(frozen=True, slots=True)
class FormExpired:
    """There is no draft to go on (none stored, or one that can't be read) or its
    service is no longer sold: the customer has to start again."""


FormStep = AskField | ConfirmOrder | FormLeft | NothingToAnswer | FormExpired


def advance(stored: StoredService, draft: Draft,
            answer: Answer) -> AskField | FormComplete | FormLeft | NothingToAnswer:
    """Take ``answer`` into ``draft`` and say what comes next, from the rules alone.

    A wrong answer leaves the draft as it was and asks the same field again with
    why. A complete form is checked again against the service as it is now
    (``refit``): a field that no longer fits is asked again, with the reason. A
    typed answer when no field is open just shows where the form is; a button
    tap then is from an old keyboard and changes nothing.
    """
    match answer:
        case WentBack():
            if not back(draft):
                return FormLeft(stored)
        case StartedOver():
            draft.values.clear()
            draft.history.clear()
        case Typed() | Picked() | Skipped():
            spec = next_field(stored, draft)
            if spec is None:
                if not isinstance(answer, Typed):
                    return NothingToAnswer()
            else:
                try:
                    _take(stored, draft, spec, answer)
                except FieldError as wrong:
                    step, steps = step_of(stored, draft)
                    return AskField(stored, draft, spec, step, steps, wrong_answer=wrong)
    return _where_the_form_is(stored, draft)


def _take(stored: StoredService, draft: Draft, spec: FormField,
          answer: Typed | Picked | Skipped) -> None:
    match answer:
        case Skipped():
            skip(draft, spec)
        case Picked(value):
            accept(stored, draft, spec, value)
        case Typed(text) if len(text) > MAX_TYPED_ANSWER:
            raise FieldError(spec.name, N_("That message is too long."))
        case Typed(text):
            accept(stored, draft, spec, text)


def _where_the_form_is(stored: StoredService, draft: Draft) -> AskField | FormComplete:
    spec = next_field(stored, draft)
    misfit = None
    if spec is None:
        misfit = refit(stored, draft)
        if misfit is not None:
            spec = next_field(stored, draft)
    if spec is None:
        return FormComplete(stored, draft)
    draft.leave_confirmation()
    step, steps = step_of(stored, draft)
    return AskField(stored, draft, spec, step, steps, no_longer_fits=misfit)
