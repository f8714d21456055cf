"""The shop's catalog, its administration, and pricing."""
