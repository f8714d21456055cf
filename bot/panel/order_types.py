"""The one table of panel order types.

Every API v2 service has a ``type`` that decides which form fields ``add`` takes,
how the quantity is derived and how the panel charges for it (SPEC.md §3). This
module is the single description of that: the panel client builds ``add``
requests from it, and the storefront conversation, validation and pricing read
the same rows. Adding a type means adding a row here, nowhere else.

Values are kept as the normalised strings the panel is sent (``"1000"``,
``"first\\nsecond"``, ``"11/11/2026"``), so a draft order is a plain
``dict[str, str]`` that can be stored, shown and submitted unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from urllib.parse import urlsplit

MAX_TEXT_LENGTH = 300
MAX_LINES_LENGTH = 20_000
MAX_URL_LENGTH = 2_048
MAX_INTEGER = 100_000_000

SUBSCRIPTION_DELAYS = (
    "0", "5", "10", "15", "30", "60", "90", "120", "150", "180", "210", "240", "270",
    "300", "360", "420", "480", "540", "600",
)


class FieldKind(StrEnum):
    URL = "url"
    INTEGER = "integer"
    LINES = "lines"  # one item per line
    CHOICE = "choice"
    DATE = "date"  # d/m/Y, in the future
    TEXT = "text"  # one short line
    COUNTRY = "country"  # an ISO 3166-1 alpha-2 code


class LinkTo(StrEnum):
    """What a link (or profile) field points at, so its example fits the platform."""

    TARGET = "target"  # what the service grows: a profile for followers, a post for likes
    PROFILE = "profile"  # an account, a channel, a page
    POST = "post"  # one post, video or track
    PAGE = "page"  # any web page (a referrer)


class QuantityRule(StrEnum):
    ENTERED = "entered"  # the customer types a quantity
    LINES = "lines"  # the number of lines in a list field
    NONE = "none"  # packages: a fixed deliverable
    PER_POST = "per_post"  # subscriptions: min..max on each post


class Pricing(StrEnum):
    PER_THOUSAND = "per_thousand"  # rate × quantity / 1000 (× runs when drip-fed)
    FLAT = "flat"  # rate is the package price
    PER_THOUSAND_PER_POST = "per_thousand_per_post"  # rate × max / 1000 × posts


def N_(message: str) -> str:
    """Mark a message for translation; it is translated where it is shown."""
    return message


class FieldError(ValueError):
    """A value the customer entered cannot be used.

    ``message`` is an English message id with ``{placeholders}``; ``params`` fill
    them after translation, so every language gets the same explanation.
    """

    def __init__(self, field_name: str, message: str, **params: object) -> None:
        super().__init__(f"{field_name}: {message.format(**params)}")
        self.field_name = field_name
        self.message = message
        self.params = params

    def render(self, translate: Callable[[str], str] = N_,
               show: Callable[[object], str] = str) -> str:
        """In the reader's words: ``translate`` the message, ``show`` each parameter
        (handlers pass the reader's number and money formatting)."""
        return translate(self.message).format(**{k: show(v) for k, v in self.params.items()})


class AboveMaximum(FieldError):
    """A number above what the field takes at all; ``OrderType.above_maximum`` says
    the service's own maximum instead when that is the smaller."""

    def __init__(self, field_name: str, maximum: int) -> None:
        super().__init__(field_name, N_("The largest allowed value is {maximum}."),
                         maximum=maximum)
        self.maximum = maximum


@dataclass(frozen=True, slots=True)
class FormField:
    name: str  # the API v2 form field
    kind: FieldKind
    prompt: str
    example: str
    required: bool = True
    choices: tuple[str, ...] = ()
    # What each choice's button says (marked for translation), when its value is a
    # panel's code ("1" … "5") rather than words a customer reads.
    choice_labels: tuple[str, ...] = ()
    link_to: LinkTo | None = None  # an example link is chosen for the platform
    minimum: int | None = None
    maximum: int | None = None
    dripfeed: bool = False  # offered only when the service allows drip-feed
    only_if: tuple[str, str] | None = None  # (other field, value) that makes it apply
    needs: str | None = None  # applies only when this other field has a value

    def applies(self, values: Mapping[str, str], dripfeed_allowed: bool) -> bool:
        if self.dripfeed and not dripfeed_allowed:
            return False
        if self.needs is not None and not values.get(self.needs):
            return False
        if self.only_if is not None:
            other, wanted = self.only_if
            return values.get(other) == wanted
        return True

    def label_of(self, value: str) -> str | None:
        """The (untranslated) label of a choice's value, ``None`` for unlabelled ones."""
        if value in self.choices and self.choice_labels:
            return self.choice_labels[self.choices.index(value)]
        return None

    def parse(self, text: str, *, today: date | None = None) -> str:
        """Normalise what the customer typed, or raise ``FieldError``."""
        if not isinstance(text, str):
            raise FieldError(self.name, N_("Please send this as a text message."))
        raw = text.strip()
        if not raw:
            raise FieldError(self.name, N_("This can't be empty."))
        parser = _PARSERS[self.kind]
        return parser(self, raw, today or date.today())


def _parse_url(spec: FormField, raw: str, _today: date) -> str:
    if len(raw) > MAX_URL_LENGTH or any(ch.isspace() for ch in raw):
        raise FieldError(spec.name, N_("That doesn't look like a link. Send one link, no spaces."))
    candidate = raw if "://" in raw else f"https://{raw}"
    try:
        parts = urlsplit(candidate)
        host = parts.hostname or ""
    except ValueError:  # "https://[::1" or "[x": an unclosed IPv6 bracket
        parts, host = None, ""
    if parts is None or parts.scheme not in ("http", "https") or "." not in host \
            or host.startswith("."):
        raise FieldError(spec.name, N_("That doesn't look like a link. It should start with https://"))
    return candidate


_THOUSANDS = re.compile(r"^\d{1,3}([ ,.\u00a0\u202f']\d{3})+$")
_SUFFIXED = re.compile(r"^(\d{1,20}(?:[.,]\d{1,20})?)\s*([kKmM])$")
_DIGITS_OF_MAX = len(str(MAX_INTEGER))


class TooLarge(ValueError):
    """A whole number, well written, above ``MAX_INTEGER``: its maximum is what to say."""


def parse_integer(text: str) -> int:
    """Read ``1000``, ``1 000``, ``1,000``, ``1k`` or ``2.5k``; raise ``ValueError``
    (``TooLarge`` for a number above ``MAX_INTEGER``)."""
    raw = text.strip()
    if raw.isdigit() and raw.isascii():
        digits = raw
    elif _THOUSANDS.match(raw):
        digits = re.sub(r"\D", "", raw)
    elif match := _SUFFIXED.match(raw):
        number = Decimal(match.group(1).replace(",", "."))
        scaled = number * (1_000 if match.group(2) in "kK" else 1_000_000)
        if scaled != scaled.to_integral_value():
            raise ValueError(raw)
        digits = str(int(scaled))
    else:
        raise ValueError(raw)
    # Counted before int() reads it: a 5,000-digit paste is too large, not an error.
    if len(digits.lstrip("0")) > _DIGITS_OF_MAX or int(digits) > MAX_INTEGER:
        raise TooLarge(raw)
    return int(digits)


def _parse_integer(spec: FormField, raw: str, _today: date) -> str:
    largest = MAX_INTEGER if spec.maximum is None else spec.maximum
    try:
        value = parse_integer(raw)
    except TooLarge:
        raise AboveMaximum(spec.name, largest) from None
    except ValueError:
        raise FieldError(spec.name, N_("Please send a whole number, like 1000.")) from None
    if spec.minimum is not None and value < spec.minimum:
        raise FieldError(spec.name, N_("The smallest allowed value is {minimum}."), minimum=spec.minimum)
    if value > largest:
        raise AboveMaximum(spec.name, largest)
    return str(value)


def split_lines(text: str) -> list[str]:
    """The non-blank lines of ``text``, trimmed (a trailing newline adds nothing)."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def _parse_lines(spec: FormField, raw: str, _today: date) -> str:
    if len(raw) > MAX_LINES_LENGTH:
        raise FieldError(spec.name, N_("That list is too long: at most {limit} characters."),
                         limit=MAX_LINES_LENGTH)
    lines = split_lines(raw)
    if any(len(line) > MAX_TEXT_LENGTH for line in lines):
        raise FieldError(spec.name, N_("Each line can be at most {limit} characters."),
                         limit=MAX_TEXT_LENGTH)
    return "\n".join(lines)


def _parse_choice(spec: FormField, raw: str, _today: date) -> str:
    if raw not in spec.choices:
        if spec.choice_labels:  # the buttons say words, not these codes
            raise FieldError(spec.name, N_("Please tap one of the buttons."))
        raise FieldError(spec.name, N_("Please pick one of: {choices}."),
                         choices=", ".join(spec.choices))
    return raw


def _parse_date(spec: FormField, raw: str, today: date) -> str:
    try:
        value = datetime.strptime(raw, "%d/%m/%Y").date()
    except ValueError:
        raise FieldError(spec.name, N_("Please send a date as day/month/year, like 31/12/2026.")) from None
    if value <= today:
        raise FieldError(spec.name, N_("That date has passed. Please send a date in the future."))
    return value.strftime("%d/%m/%Y")


def _parse_text(spec: FormField, raw: str, _today: date) -> str:
    if "\n" in raw:
        raise FieldError(spec.name, N_("Please send a single line."))
    if len(raw) > MAX_TEXT_LENGTH:
        raise FieldError(spec.name, N_("That is too long: at most {limit} characters."),
                         limit=MAX_TEXT_LENGTH)
    return raw


# ISO 3166-1 alpha-2: what panels' geo-targeted services take.
_ISO_COUNTRY_LIST = """
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
VN VU WF WS YE YT ZA ZM ZW
"""
ISO_COUNTRIES = frozenset(_ISO_COUNTRY_LIST.split())


def _parse_country(spec: FormField, raw: str, _today: date) -> str:
    code = raw.upper()
    if code not in ISO_COUNTRIES:
        raise FieldError(spec.name, N_("Please send a two-letter country code, like US, DE or TR."))
    return code


_PARSERS = {
    FieldKind.URL: _parse_url,
    FieldKind.INTEGER: _parse_integer,
    FieldKind.LINES: _parse_lines,
    FieldKind.CHOICE: _parse_choice,
    FieldKind.DATE: _parse_date,
    FieldKind.TEXT: _parse_text,
    FieldKind.COUNTRY: _parse_country,
}


@dataclass(frozen=True, slots=True)
class Limits:
    """A service's ``min``/``max`` and whether it allows drip-feed."""

    min: int
    max: int
    dripfeed: bool = False


@dataclass(frozen=True, slots=True)
class OrderType:
    name: str  # canonical Title Case name
    fields: tuple[FormField, ...]
    quantity: QuantityRule
    pricing: Pricing
    quantity_field: str | None = None  # the list counted when quantity is LINES
    aliases: tuple[str, ...] = ()

    def form(self, values: Mapping[str, str], limits: Limits) -> list[FormField]:
        """The fields to ask for, in order, given what has been entered so far."""
        return [f for f in self.fields if f.applies(values, limits.dripfeed)]

    def field_named(self, name: str) -> FormField:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def quantity_of(self, values: Mapping[str, str]) -> int | None:
        """The quantity the panel will deliver per run (``None`` for packages)."""
        match self.quantity:
            case QuantityRule.ENTERED:
                return int(values["quantity"])
            case QuantityRule.LINES:
                assert self.quantity_field is not None
                return len(split_lines(values.get(self.quantity_field, "")))
            case QuantityRule.PER_POST:
                return int(values["max"])
            case QuantityRule.NONE:
                return None

    def runs_of(self, values: Mapping[str, str]) -> int:
        return int(values["runs"]) if values.get("runs") else 1

    def total_quantity(self, values: Mapping[str, str]) -> int | None:
        """Units delivered in all (every run; every post of a subscription, at its
        maximum), ``None`` for packages. Partial refunds are measured against it,
        so it is never less than what the price paid for."""
        if self.pricing is Pricing.FLAT:
            return None
        per_run = self.quantity_of(values)
        if per_run is None:
            return None
        if self.quantity is QuantityRule.PER_POST:
            return per_run * self._posts(values)
        return per_run * self.runs_of(values)

    @staticmethod
    def _posts(values: Mapping[str, str]) -> int:
        return int(values.get("posts") or 0) + int(values.get("old_posts") or 0)

    def _bounded_by_service(self, name: str) -> bool:
        """Whether the service's min..max bounds this entered number."""
        return ((self.quantity is QuantityRule.ENTERED and name == "quantity")
                or (self.quantity is QuantityRule.PER_POST and name in ("min", "max")))

    def above_maximum(self, error: AboveMaximum, limits: Limits) -> FieldError:
        """What to tell about a number above what its field takes at all: the
        service's maximum when it bounds the field and is the smaller (``999999999``
        then gets what ``100000000`` gets), else the field's own."""
        if self._bounded_by_service(error.field_name):
            return _range_error(error.field_name, error.maximum + 1, limits) or error
        return error

    def check_field(self, name: str, values: Mapping[str, str], limits: Limits) -> None:
        """The service's limits on one entered field (quantity, list length, min/max)."""
        value = values.get(name)
        if not value:
            return
        if self.quantity is QuantityRule.ENTERED and name == "quantity":
            _check_range(name, int(value), limits)
        elif self.quantity is QuantityRule.LINES and name == self.quantity_field:
            count = len(split_lines(value))
            if count < limits.min:
                raise FieldError(name, N_("Send at least {minimum} lines (you sent {count})."),
                                 minimum=limits.min, count=count)
            if count > limits.max:
                raise FieldError(name, N_("Send at most {maximum} lines (you sent {count})."),
                                 maximum=limits.max, count=count)
        elif self.quantity is QuantityRule.PER_POST and name in ("min", "max"):
            _check_range(name, int(value), limits)
            if name == "max" and values.get("min") and int(value) < int(values["min"]):
                raise FieldError(name, N_("The maximum can't be smaller than the minimum ({minimum})."),
                                 minimum=int(values["min"]))

    def validate(self, values: Mapping[str, str], limits: Limits) -> None:
        """Check a complete form against the type and the service; raise ``FieldError``."""
        for spec in self.form(values, limits):
            if spec.required and not values.get(spec.name):
                raise FieldError(spec.name, N_("This field is required."))
        if not limits.dripfeed and (values.get("runs") or values.get("interval")):
            raise FieldError("runs", N_("This service does not support drip-feed."))
        if values.get("runs") and int(values["runs"]) < 2:
            raise FieldError("runs", N_("Drip-feed needs at least 2 runs."))
        for spec in self.fields:
            self.check_field(spec.name, values, limits)

    def cost(self, rate: Decimal, values: Mapping[str, str]) -> Decimal:
        """What the panel charges, exactly, in the panel's currency."""
        match self.pricing:
            case Pricing.FLAT:
                return rate
            case Pricing.PER_THOUSAND:
                quantity = self.quantity_of(values) or 0
                return rate * quantity * self.runs_of(values) / 1000
            case Pricing.PER_THOUSAND_PER_POST:
                return rate * int(values["max"]) * self._posts(values) / 1000

    def add_params(self, values: Mapping[str, str]) -> dict[str, str]:
        """The ``add`` form fields for ``values``; unknown keys are dropped."""
        params: dict[str, str] = {}
        for spec in self.fields:
            value = values.get(spec.name)
            if value is None or value == "":
                continue
            if spec.only_if is not None and values.get(spec.only_if[0]) != spec.only_if[1]:
                continue
            params[spec.name] = value
        return params


def _check_range(name: str, value: int, limits: Limits) -> None:
    error = _range_error(name, value, limits)
    if error is not None:
        raise error


def _range_error(name: str, value: int, limits: Limits) -> FieldError | None:
    if value < limits.min:
        return FieldError(name, N_("The smallest amount for this service is {minimum}."),
                          minimum=limits.min)
    if value > limits.max:
        return FieldError(name, N_("The largest amount for this service is {maximum}."),
                          maximum=limits.max)
    return None


LINK = FormField("link", FieldKind.URL, N_("Send the link"), "https://instagram.com/p/...",
                 link_to=LinkTo.TARGET)
QUANTITY = FormField("quantity", FieldKind.INTEGER, N_("How many?"), "1000", minimum=1)
RUNS = FormField(
    "runs", FieldKind.INTEGER, N_("Drip-feed: how many runs? (optional)"), "5",
    required=False, minimum=2, maximum=1000, dripfeed=True,
)
INTERVAL = FormField(
    "interval", FieldKind.INTEGER, N_("Drip-feed: minutes between runs"), "30",
    minimum=1, maximum=10_080, dripfeed=True, needs="runs",
)
COMMENTS = FormField("comments", FieldKind.LINES, N_("Send the comments, one per line"),
                     N_("Great post!\nLove it"))
USERNAMES = FormField("usernames", FieldKind.LINES, N_("Send the usernames, one per line"),
                      "alice\nbob")


def _text(name: str, prompt: str, example: str) -> FormField:
    return FormField(name, FieldKind.TEXT, prompt, example)


ORDER_TYPES: tuple[OrderType, ...] = (
    OrderType("Default", (LINK, QUANTITY, RUNS, INTERVAL), QuantityRule.ENTERED,
              Pricing.PER_THOUSAND),
    OrderType("Package", (LINK,), QuantityRule.NONE, Pricing.FLAT),
    OrderType("Custom Comments", (LINK, COMMENTS), QuantityRule.LINES, Pricing.PER_THOUSAND,
              quantity_field="comments"),
    OrderType("Custom Comments Package", (LINK, COMMENTS), QuantityRule.NONE, Pricing.FLAT),
    OrderType("Mentions", (LINK, QUANTITY, USERNAMES), QuantityRule.ENTERED,
              Pricing.PER_THOUSAND),
    OrderType("Mentions with Hashtags",
              (LINK, QUANTITY, USERNAMES,
               FormField("hashtags", FieldKind.LINES, N_("Send the hashtags, one per line"),
                         "#travel\n#food")),
              QuantityRule.ENTERED, Pricing.PER_THOUSAND),
    OrderType("Mentions Custom List", (LINK, USERNAMES), QuantityRule.LINES,
              Pricing.PER_THOUSAND, quantity_field="usernames"),
    OrderType("Mentions Hashtag",
              (LINK, QUANTITY, _text("hashtag", N_("Which hashtag to take usernames from?"),
                                     "#travel")),
              QuantityRule.ENTERED, Pricing.PER_THOUSAND),
    OrderType("Mentions User Followers",
              (LINK, QUANTITY,
               FormField("username", FieldKind.TEXT,
                         N_("Whose followers to mention? (profile link)"),
                         "https://instagram.com/username", link_to=LinkTo.PROFILE)),
              QuantityRule.ENTERED, Pricing.PER_THOUSAND,
              aliases=("Mentions Users Followers",)),
    OrderType("Mentions Media Likers",
              (LINK, QUANTITY,
               FormField("media", FieldKind.URL, N_("Link to the post whose likers to mention"),
                         "https://instagram.com/p/...", link_to=LinkTo.POST)),
              QuantityRule.ENTERED, Pricing.PER_THOUSAND),
    OrderType("Comment Likes",
              (LINK, QUANTITY, _text("username", N_("Username of the comment's author"), "alice")),
              QuantityRule.ENTERED, Pricing.PER_THOUSAND),
    OrderType("Poll",
              (LINK, QUANTITY,
               FormField("answer_number", FieldKind.INTEGER, N_("Which answer number to vote for?"),
                         "1", minimum=1, maximum=100)),
              QuantityRule.ENTERED, Pricing.PER_THOUSAND),
    OrderType("Comment Replies",
              (LINK, _text("username", N_("Username of the comment's author"), "alice"), COMMENTS),
              QuantityRule.LINES, Pricing.PER_THOUSAND, quantity_field="comments"),
    OrderType("Invites from Groups",
              (LINK, QUANTITY,
               FormField("groups", FieldKind.LINES, N_("Send the groups, one per line"),
                         "https://t.me/group_one\nhttps://t.me/group_two")),
              QuantityRule.ENTERED, Pricing.PER_THOUSAND),
    OrderType(
        "Subscriptions",
        (
            _text("username", N_("Which account? Send the username"), "alice"),
            FormField("min", FieldKind.INTEGER, N_("Smallest amount per post"), "100", minimum=1),
            FormField("max", FieldKind.INTEGER, N_("Largest amount per post"), "200", minimum=1),
            # The panel allows unlimited future posts, but a prepaid shop must know
            # the price up front, so the storefront always asks for a post count.
            FormField("posts", FieldKind.INTEGER, N_("How many new posts?"), "10",
                      minimum=1, maximum=10_000),
            FormField("old_posts", FieldKind.INTEGER, N_("How many existing posts? (optional)"),
                      "0", required=False, minimum=0, maximum=10_000),
            FormField("delay", FieldKind.CHOICE, N_("Delay after a new post (minutes)"), "0",
                      choices=SUBSCRIPTION_DELAYS),
            FormField("expiry", FieldKind.DATE, N_("Expiry date (optional)"), "31/12/2026",
                      required=False),
        ),
        QuantityRule.PER_POST, Pricing.PER_THOUSAND_PER_POST,
    ),
    OrderType("SEO",
              (LINK, QUANTITY,
               FormField("keywords", FieldKind.LINES, N_("Send the keywords, one per line"),
                         N_("buy shoes\nrunning shoes"))),
              QuantityRule.ENTERED, Pricing.PER_THOUSAND, aliases=("SEO2",)),
    OrderType(
        "Web Traffic",
        (
            LINK, QUANTITY, RUNS, INTERVAL,
            FormField("country", FieldKind.COUNTRY, N_("Visitors' country (two-letter code)"),
                      "US"),
            FormField("device", FieldKind.CHOICE, N_("Which devices should the visitors use?"),
                      "5", choices=("1", "2", "3", "4", "5"),
                      choice_labels=(N_("🖥 Desktop"), N_("📱 Mobile: Android"),
                                     N_("📱 Mobile: iPhone"), N_("📱 Mobile: Android and iPhone"),
                                     N_("🔀 Desktop and mobile"))),
            FormField("type_of_traffic", FieldKind.CHOICE,
                      N_("Where should the visitors come from?"), "3", choices=("1", "2", "3"),
                      choice_labels=(N_("🔎 From a Google search"),
                                     N_("🔗 From a link on another site"),
                                     N_("➡️ Direct visits"))),
            FormField("google_keyword", FieldKind.TEXT, N_("Google keyword"), N_("buy shoes"),
                      only_if=("type_of_traffic", "1")),
            FormField("referring_url", FieldKind.URL, N_("Referring page"), "https://example.com",
                      only_if=("type_of_traffic", "2"), link_to=LinkTo.PAGE),
        ),
        QuantityRule.ENTERED, Pricing.PER_THOUSAND,
    ),
)


def fold_type_name(raw: str) -> str:
    """``"custom_comments"``, ``"Custom-Comments "`` → ``"custom comments"``."""
    return " ".join(re.sub(r"[_\-]+", " ", raw).lower().split())


_BY_FOLDED: dict[str, OrderType] = {
    fold_type_name(name): order_type
    for order_type in ORDER_TYPES
    for name in (order_type.name, *order_type.aliases)
}


@lru_cache(maxsize=1024)  # a panel uses a handful of type strings; asked on every page
def order_type_for(raw: str | None) -> OrderType | None:
    """The row for a panel's ``type`` string; a missing type is Default (SPEC §2)."""
    if raw is None or not raw.strip():
        return _BY_FOLDED["default"]
    return _BY_FOLDED.get(fold_type_name(raw))


def get_order_type(name: str) -> OrderType:
    order_type = order_type_for(name)
    if order_type is None:
        raise KeyError(name)
    return order_type
