"""The shop's catalog, its administration, and pricing.

``StoredService`` (a service as the shop sells it) is given here for the screens
that show one, so they need not reach into storage for its type.
"""

from storage.catalog import StoredService

__all__ = ["StoredService"]
