"""Routing across panels (issue 22): failover of an order, links between services, what the panels changed."""
