"""Admin alerts, the outbox sender, broadcasts, customers' languages.

``OutboxRow`` (one message waiting in the outbox) is given here for the sender
that writes it out in Telegram, so it need not reach into storage for its type.
"""

from storage.outbox import OutboxRow

__all__ = ["OutboxRow"]
