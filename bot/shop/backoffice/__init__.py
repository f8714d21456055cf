"""Customers, the audit log, statistics, the daily report, the panel watch."""
