"""Small readers shared by source normalizers: payloads are untrusted, shapes vary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def type_word(text: str, default: str = "unknown") -> str:
    """One word of an event type: lower-case ASCII letters, digits, `_` and `-` only."""
    word = "".join(
        c if (c.isascii() and c.isalnum()) or c in "_-" else "_" for c in text.lower().strip()
    )
    return word or default


def mapping(value: object) -> Mapping[str, Any]:
    """`value` when it is a JSON object, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def str_or_none(value: object) -> str | None:
    return None if value is None else str(value)
