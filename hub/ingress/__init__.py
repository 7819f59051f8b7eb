"""Ingress: receive a webhook (cap, verify, dedup) and commit it durably in groups."""
