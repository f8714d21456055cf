"""Routing across panels (issue 22): a shop service's backups on other panels, and the failover."""
