"""What the audit log records, and reading it back.

Every admin action is one row (storage/audit.py), written by the service that
makes the change, in the same transaction: who, what, on what, before → after.
The actions:

- ``credit`` / ``debit``: a balance changed by an admin (target: user; note: the reason)
- ``block`` / ``unblock``: a customer refused service or let back (target: user)
- ``markup``: a markup set or cleared (target: shop, category or service)
- ``hide`` / ``show``: a service or a category taken off sale or put back
- ``attach`` / ``refund_order``: an ``unknown`` order resolved (target: order)
- ``broadcast`` / ``broadcast_cancel``: a broadcast sent or stopped (target: broadcast)
- ``refund_stars``: a Stars payment given back (target: payment)
- ``catalog_refresh``: the catalog refreshed from the panels on an admin's request
- ``promo_new`` / ``promo_off``: a promo code made (target: promo; after: its terms) or
  turned off
- ``referral_payout``: a referral commission paid on a Stars top-up (target: the
  referrer; admin 0, the system; note: level, percent, payer, charge)
- ``referral_clawback``: a commission taken back with its refunded top-up (target: the
  referrer; admin: who refunded, 0 for the reconciliation; note: taken, written off)
- ``referral_given_back``: a clawback given back, the refund having not happened
- ``referrals_off`` / ``referrals_on``: a referrer's commissions stopped or resumed
- ``route_link`` / ``route_unlink``: a backup on another panel linked to a service or
  unlinked (target: the service; after/before: the backup as PANEL:SERVICE; admin 0:
  the command line)
- ``api_key_create`` / ``api_key_rotate`` / ``api_key_revoke``: a customer made their
  wholesale API key, replaced it or revoked it in the chat (/api; admin: the customer
  themselves; after/before: the key's last characters, never the key)
- ``api_off`` / ``api_on``: an admin turned a customer's API access off or on again
  (target: user; before → after: on/off)
"""

from __future__ import annotations

from storage import audit as audit_store
from storage.audit import AuditEntry
from storage.db import Database

__all__ = ["ACTIONS", "AuditEntry", "AuditLog"]

ACTIONS = ("credit", "debit", "block", "unblock", "markup", "hide", "show", "attach",
           "refund_order", "broadcast", "broadcast_cancel", "refund_stars", "catalog_refresh",
           "promo_new", "promo_off",
           "referral_payout", "referral_clawback", "referral_given_back", "referrals_off",
           "referrals_on", "route_link", "route_unlink", "api_key_create", "api_key_rotate",
           "api_key_revoke", "api_off", "api_on")


class AuditLog:
    """The audit log of this shop's database, for reading back: bound once at
    start-up, so the admin screens never hold the database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def recent(self, limit: int, offset: int = 0) -> tuple[list[AuditEntry], int]:
        """A page of entries, newest first, and how many there are in all."""
        return await audit_store.recent(self.db, limit, offset)

    async def about(self, target_kind: str, target_id: object,
                    limit: int = 5) -> list[AuditEntry]:
        return await audit_store.about(self.db, target_kind, target_id, limit)
