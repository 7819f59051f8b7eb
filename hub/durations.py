"""Kept for code written against the old path: the one duration grammar is
`connectors.base.parse_duration`, where both hub/ and connectors/ may import it."""

from __future__ import annotations

from connectors.base import parse_duration

__all__ = ["parse_duration"]
