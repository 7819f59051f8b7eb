"""Notion helpers shared by the Notion sources and the worker: parsing, diffing, fetching.

Everything here except `client` is pure, so ingress, the worker and `simulate` agree.
"""
