"""Metrics, logs and the masking of secrets: the bottom floor, imported by all."""
