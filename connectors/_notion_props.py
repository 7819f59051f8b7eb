"""Notion property values: plain rule values turned into Notion's typed page properties."""

from __future__ import annotations

import ast
import json
import logging
import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from connectors._notion_api import _ID, Schema, _dashed, notion_id
from connectors.base import parse_boolean

log = logging.getLogger("connectors.notion")
TEXT_LIMIT = 2000  # rich text text.content
ITEMS_LIMIT = 100  # multi_select options, people, relations, rich text items
ELLIPSIS = "…"
WRITABLE_TYPES = (
    "title",
    "rich_text",
    "number",
    "select",
    "status",
    "multi_select",
    "people",
    "relation",
    "date",
    "checkbox",
    "url",
    "email",
    "phone_number",
    "files",
)


def _types(params: Mapping[str, Any]) -> dict[str, str]:
    raw = params.get("types") or {}
    if not isinstance(raw, Mapping):
        raise ValueError("`types` must map property names to Notion types")
    bad = {k: v for k, v in raw.items() if v not in WRITABLE_TYPES}
    if bad:
        raise ValueError(
            f"types {bad} are not writable Notion types; use {', '.join(WRITABLE_TYPES)}"
        )
    return {str(k): str(v) for k, v in raw.items()}


def build_properties(
    values: Mapping[str, Any], schema: Schema | None, types: Mapping[str, str]
) -> dict[str, Any]:
    """The `properties` body; every problem is reported at once, naming the property."""
    out: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in values.items():
        name = str(key)
        kind = types.get(name) or (schema.type_of(name) if schema else None)
        if kind is None:
            known = ", ".join(schema.types) if schema else "none"
            problems.append(f"no property {name!r} (known: {known})")
            continue
        if kind not in WRITABLE_TYPES:
            problems.append(
                f"{name!r} is a {kind} property, which Notion computes; it cannot be set"
            )
            continue
        try:
            out[name] = {kind: property_value(kind, value, name)}
        except ValueError as exc:
            problems.append(f"{name!r} ({kind}): {exc}")
    if problems:
        raise ValueError("; ".join(problems))
    return out


def property_value(kind: str, value: Any, name: str = "") -> Any:
    """The inner value for one property type; a mapping is sent as Notion's own shape."""
    if isinstance(value, Mapping):
        return dict(value)
    if kind in ("title", "rich_text"):
        return rich_text("" if value is None else str(value), name)
    if _is_empty(value):
        return [] if kind in ("multi_select", "people", "relation", "files") else None
    if kind == "number":
        return _number(value)
    if kind == "checkbox":
        return parse_boolean(value)
    if kind in ("select", "status"):
        return {"name": str(value).strip()}
    if kind == "date":
        return _date(str(value).strip())
    if kind in ("url", "email", "phone_number"):
        limit = TEXT_LIMIT if kind == "url" else 200
        if len(str(value)) > limit:
            raise ValueError(f"longer than Notion's {limit} characters")
        return str(value).strip()
    items = _items(value)
    if len(items) > ITEMS_LIMIT:
        raise ValueError(f"{len(items)} items; Notion takes at most {ITEMS_LIMIT}")
    if kind == "multi_select":
        return [{"name": item} for item in items]
    if kind == "people":
        bad = [i for i in items if not _ID.fullmatch(i)]
        if bad:
            raise ValueError(f"people need Notion user ids, not {bad}")
        return [{"object": "user", "id": _dashed(i)} for i in items]
    if kind == "relation":
        return [{"id": notion_id(i, "related page")} for i in items]
    return [  # files: external URLs
        {
            "name": (i.rstrip("/").rsplit("/", 1)[-1] or i)[:100],
            "type": "external",
            "external": {"url": i},
        }
        for i in items
    ]


def rich_text(text: str, what: str) -> list[dict[str, Any]]:
    """One text item, cut at Notion's 2000-character limit with a visible marker."""
    if not text:
        return []
    return [{"type": "text", "text": {"content": _cut(text, what)}}]


def _cut(text: str, what: str) -> str:
    if len(text) <= TEXT_LIMIT:
        return text
    log.warning("notion: %s cut from %d to %d characters", what, len(text), TEXT_LIMIT)
    return text[: TEXT_LIMIT - 1] + ELLIPSIS


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, int | float):
        number: int | float = value
    else:
        text = str(value).strip()
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise ValueError(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _date(text: str) -> dict[str, str]:
    """`2026-12-01`, an ISO 8601 time, or a range `start/end`."""
    parts = text.split("/", 1)
    for part in parts:
        try:
            (date if len(part) == 10 else datetime).fromisoformat(part)
        except ValueError:
            raise ValueError(f"{part!r} is not an ISO 8601 date or time") from None
    return {"start": parts[0], "end": parts[1]} if len(parts) == 2 else {"start": parts[0]}


def _items(value: Any) -> list[str]:
    """A list from a list, a rendered list (`['a', 'b']`), or a comma-separated string."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            try:
                value = json.loads(text)
            except ValueError:
                try:
                    value = ast.literal_eval(text)  # how Jinja2 renders a Python list
                except (ValueError, SyntaxError):
                    raise ValueError(f"{text[:80]!r} is not a list") from None
        else:
            value = text.split(",")
    if not isinstance(value, list | tuple):
        value = [value]
    return [str(v).strip() for v in value if v is not None and str(v).strip()]
