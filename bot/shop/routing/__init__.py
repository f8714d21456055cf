"""Routing across panels (issue 22): backups, failover, what the panels did."""
