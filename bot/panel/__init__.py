"""API v2 panel client: typed models, lenient parsing, failure classification."""

from bot.panel.client import MAX_IDS_PER_REQUEST, PanelClient, RetryPolicy
from bot.panel.errors import (
    PanelAmbiguous,
    PanelError,
    PanelRejected,
    PanelUnavailable,
    RejectReason,
)
from bot.panel.models import (
    Balance,
    CancelAccepted,
    ItemError,
    OrderState,
    OrderStatus,
    RefillState,
    RefillStatus,
    Service,
)

__all__ = [
    "MAX_IDS_PER_REQUEST", "Balance", "CancelAccepted", "ItemError", "OrderState", "OrderStatus",
    "PanelAmbiguous", "PanelClient", "PanelError", "PanelRejected", "PanelUnavailable",
    "RefillState", "RefillStatus", "RejectReason", "RetryPolicy", "Service",
]
