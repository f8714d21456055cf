"""The order form's rules, placing orders safely, tracking them.

``StoredOrder`` (an order as the shop keeps it) is given here for the screens and
notices that show one, so they need not reach into storage for its type.
"""

from storage.orders import StoredOrder

__all__ = ["StoredOrder"]
