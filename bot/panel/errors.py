"""The three ways a panel call can fail, so callers can branch on what happened.

* ``PanelRejected``: the panel understood the request and said no. Nothing was
  done; the message is the panel's and ``reason`` is machine-readable.
* ``PanelUnavailable``: nothing happened (connection refused, 429, 5xx, a
  Cloudflare page, an unreadable answer to a read-only action). Safe to try later.
* ``PanelAmbiguous``: an ``add`` whose outcome cannot be known because the request
  may have reached the panel. It must be reconciled, never resubmitted on a guess.
"""

from __future__ import annotations

from enum import StrEnum

from bot.observability.redaction import redact

# A panel error message is kept to this many characters, after redaction (a cut
# first could leave half a key that no longer matches).
MESSAGE_CHARS = 500


class RejectReason(StrEnum):
    BAD_KEY = "bad_key"
    BAD_REQUEST = "bad_request"
    BAD_SERVICE = "bad_service"
    BAD_LINK = "bad_link"
    QUANTITY = "quantity"
    NOT_ENOUGH_FUNDS = "not_enough_funds"
    DUPLICATE = "duplicate"
    DRIPFEED = "dripfeed"
    BAD_ORDER = "bad_order"
    REFILL_NOT_FOUND = "refill_not_found"
    NOT_REFILLABLE = "not_refillable"
    NOT_CANCELABLE = "not_cancelable"
    OTHER = "other"
    # Not a refusal: the panel's answer for this id could not be read (an item with
    # no status, a number out of bounds, a Partial without remains...). Nothing is
    # known to have happened, so a single-id call reports it as unavailable.
    UNREADABLE = "unreadable"


# Checked in order: the first class whose needle is in the lower-cased message
# wins, so the specific ("active order with this link") precede the general ("link").
_CATALOGUE: tuple[tuple[RejectReason, tuple[str, ...]], ...] = (
    (RejectReason.BAD_KEY, ("api key", "api_key", "apikey", "api_is_disable", "invalid key")),
    (RejectReason.NOT_ENOUGH_FUNDS, ("not enough funds", "not_enough_funds", "insufficient")),
    (RejectReason.DUPLICATE, ("duplicate", "active order")),
    (RejectReason.DRIPFEED, ("dripfeed", "drip-feed", "drip feed", "interval")),
    (RejectReason.BAD_SERVICE, ("service id", "service_id", "incorrect_service")),
    (RejectReason.QUANTITY, ("quantity", "minimum amount", "maximum amount")),
    (RejectReason.REFILL_NOT_FOUND, ("refill not found",)),
    (RejectReason.NOT_REFILLABLE, ("refill",)),
    (RejectReason.NOT_CANCELABLE, ("cancel",)),
    (RejectReason.BAD_ORDER, ("order id", "order_id", "incorrect order")),
    (RejectReason.BAD_LINK, ("link",)),
    (RejectReason.BAD_REQUEST, ("incorrect request", "invalid action", "action field",
                                "this_action_is_invalid")),
)


def classify(message: str) -> RejectReason:
    """The reason class of a panel error message (SPEC.md §8 catalogue)."""
    text = message.lower()
    for reason, needles in _CATALOGUE:
        if any(needle in text for needle in needles):
            return reason
    return RejectReason.OTHER


class PanelError(Exception):
    """Base of every panel failure; ``panel`` names the configured panel."""

    def __init__(self, message: str, *, panel: str = "", action: str = "") -> None:
        # The one gate for every panel failure's text: panels echo keys and
        # send megabytes of HTML, and these messages reach logs, orders.error
        # and admin alerts.
        message = redact(message)[:MESSAGE_CHARS]
        super().__init__(message)
        self.message = message
        self.panel = panel
        self.action = action

    def __str__(self) -> str:
        where = f"{self.panel} {self.action}".strip()
        return f"{where}: {self.message}" if where else self.message


class PanelRejected(PanelError):
    def __init__(self, message: str, *, reason: RejectReason | None = None, panel: str = "",
                 action: str = "") -> None:
        super().__init__(message, panel=panel, action=action)
        self.reason = reason or classify(message)


class PanelUnavailable(PanelError):
    """Nothing happened. ``never_sent``: the connection was never made at all."""

    def __init__(self, message: str, *, retry_after: float | None = None, never_sent: bool = False,
                 panel: str = "", action: str = "") -> None:
        super().__init__(message, panel=panel, action=action)
        self.retry_after = retry_after
        self.never_sent = never_sent


class PanelAmbiguous(PanelError):
    """The ``add`` request may have reached the panel; its result is unknown."""
