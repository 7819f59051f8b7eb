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


def text_or_none(value: object) -> str | None:
    """`value` when it is a non-empty string (an id, a name), else None."""
    return value if isinstance(value, str) and value else None


def source_path(prefix: str, *parts: object) -> str:
    """`prefix/part/...` as the event schema allows: no empty segments, no whitespace.

    The parts are ids from an untrusted payload; a team id of "\\r" or "a//b" must not
    make an event that fails the schema (or a `source:` glob that cannot match it).
    """
    segments = [prefix]
    for part in parts:
        for piece in ("" if part is None else str(part)).split("/"):
            segment = "".join("_" if c.isspace() else c for c in piece)
            if segment:
                segments.append(segment)
    return "/".join(segments)
