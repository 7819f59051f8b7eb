"""Flatten Notion page property values into the plain values rules and templates use.

Property value shapes: https://developers.notion.com/reference/page-property-values

One property becomes one key, named as in Notion, holding a plain JSON value:

    title, rich_text        "plain text"
    select, status          "Option name" (None when empty)
    multi_select            ["a", "b"]
    people                  ["Ada Lovelace", ...]     + "<Name> emails": ["ada@example.com"]
    created_by/last_edited_by  "Ada Lovelace"        + "<Name> email": "ada@example.com"
    date                    "2026-11-30" or "2026-11-30T15:00:00.000+01:00" (the start,
                            as Notion wrote it)      + "<Name> end" when the date is a range
    relation                ["<page id>", ...]
    number, checkbox, url, email, phone_number   the value itself
    formula, rollup         the computed value (dates as their start, arrays flattened)
    created_time, last_edited_time  "2026-11-18T09:12:00.000Z"
    unique_id               "TASK-41" ("41" without a prefix)
    files                   ["brief.pdf", ...] (names: Notion-hosted URLs are signed and
                            change on every fetch, which would show as a change each time)
    anything else           None, never an error

Dates are the start string so `changes.Due: {to: "2026-11-28"}` and
`fields.Due: {glob: "2026-11-30*"}` read naturally; the end of a range sits beside it.
Sibling keys never overwrite a real property of the same name.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from hub.sources._values import mapping

__all__ = [
    "flatten_properties",
    "known_people",
    "page_title",
    "plain_text",
    "property_names",
]


def flatten_properties(page: Mapping[str, Any]) -> dict[str, Any]:
    """Every property of a page (or automation payload's `data`) as a plain value."""
    props = page.get("properties")
    if not isinstance(props, Mapping):
        return {}
    flat: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, prop in props.items():
        if not isinstance(prop, Mapping):
            flat[str(name)] = None
            continue
        flat[str(name)] = flatten_value(prop)
        extra.update(_siblings(str(name), prop))
    for key, value in extra.items():
        flat.setdefault(key, value)
    return flat


def flatten_value(prop: Mapping[str, Any]) -> Any:
    """One property value object (`{"type": t, t: ...}`) as a plain value; None if unknown."""
    kind = prop.get("type")
    if not isinstance(kind, str):
        return None
    reader = _READERS.get(kind)
    if reader is None:
        return None
    try:
        return reader(prop.get(kind))
    except (TypeError, ValueError, KeyError, AttributeError):
        # A shape Notion may add later must not stop the event: the value is unknown.
        return None


def plain_text(rich_text: object) -> str:
    """Concatenated `plain_text` of a rich text array ("" when empty or not a list)."""
    if not isinstance(rich_text, list):
        return ""
    parts: list[str] = []
    for item in rich_text:
        if isinstance(item, Mapping):
            text = item.get("plain_text")
            if text is None:
                text = mapping(item.get("text")).get("content")
            if isinstance(text, str):
                parts.append(text)
    return "".join(parts)


def page_title(page: Mapping[str, Any]) -> str | None:
    """The text of the page's `title` property, or None when it has none."""
    props = page.get("properties")
    if not isinstance(props, Mapping):
        return None
    for prop in props.values():
        if isinstance(prop, Mapping) and prop.get("type") == "title":
            return plain_text(prop.get("title"))
    return None


def known_people(page: Mapping[str, Any]) -> dict[str, tuple[str | None, str | None]]:
    """User id → (name, email) for every user object a page's properties mention.

    Webhook `authors` carry ids only; this names them without an extra API call when the
    author also appears in a people or created-by property.
    """
    out: dict[str, tuple[str | None, str | None]] = {}
    props = page.get("properties")
    if not isinstance(props, Mapping):
        return out
    for prop in props.values():
        if not isinstance(prop, Mapping):
            continue
        kind = prop.get("type")
        value = prop.get(kind) if isinstance(kind, str) else None
        users = value if kind == "people" else [value] if kind in _USER_KINDS else []
        for user in users if isinstance(users, list) else []:
            user_map = mapping(user)
            user_id = user_map.get("id")
            if isinstance(user_id, str) and (user_map.get("name") or _email(user_map)):
                out[user_id] = (_str(user_map.get("name")), _email(user_map))
    return out


def property_names(schema: Mapping[str, Any]) -> dict[str, str]:
    """Property id → name from a database or data source object's `properties` schema.

    Ids are URL-encoded (`%3AUPp`) in both webhook `updated_properties` and the schema,
    so they are used as written.
    """
    props = schema.get("properties")
    if not isinstance(props, Mapping):
        return {}
    out: dict[str, str] = {}
    for name, prop in props.items():
        prop_id = mapping(prop).get("id")
        if isinstance(prop_id, str):
            out[prop_id] = str(mapping(prop).get("name") or name)
    return out


# --- readers, one per property type ------------------------------------------------------

_USER_KINDS = ("created_by", "last_edited_by")


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _email(user: Mapping[str, Any]) -> str | None:
    return _str(mapping(user.get("person")).get("email"))


def _user_name(user: object) -> str | None:
    user_map = mapping(user)
    # Without the user-information capability Notion sends only {object, id}.
    return _str(user_map.get("name")) or _str(user_map.get("id"))


def _name(option: object) -> str | None:
    return _str(mapping(option).get("name"))


def _names(options: object) -> list[str]:
    if not isinstance(options, list):
        return []
    return [n for n in (_name(o) for o in options) if n is not None]


def _people(users: object) -> list[str]:
    if not isinstance(users, list):
        return []
    return [n for n in (_user_name(u) for u in users) if n is not None]


def _date_start(value: object) -> str | None:
    return _str(mapping(value).get("start"))


def _unique_id(value: object) -> str | None:
    number = mapping(value).get("number")
    if number is None:
        return None
    prefix = mapping(value).get("prefix")
    return f"{prefix}-{number}" if prefix else str(number)


def _files(files: object) -> list[str]:
    if not isinstance(files, list):
        return []
    out: list[str] = []
    for item in files:
        item_map = mapping(item)
        name = _str(item_map.get("name"))
        kind = item_map.get("type")
        url = _str(mapping(item_map.get(kind)).get("url")) if isinstance(kind, str) else None
        if name or url:
            out.append(name or url or "")
    return out


def _relation(items: object) -> list[str]:
    if not isinstance(items, list):
        return []
    return [i for i in (_str(mapping(item).get("id")) for item in items) if i is not None]


def _computed(value: object) -> Any:
    """A formula or rollup result: `{"type": t, t: value}`; arrays hold property values."""
    value_map = mapping(value)
    kind = value_map.get("type")
    if not isinstance(kind, str):
        return None
    inner = value_map.get(kind)
    if kind == "date":
        return _date_start(inner)
    if kind == "array":
        return [flatten_value(mapping(item)) for item in inner] if isinstance(inner, list) else []
    if kind in ("string", "number", "boolean"):
        return inner
    return None  # "incomplete", "unsupported" and types added later


def _scalar(value: object) -> Any:
    return value if value is None or isinstance(value, str | int | float | bool) else None


_READERS: Mapping[str, Any] = MappingProxyType(
    {
        "title": plain_text,
        "rich_text": plain_text,
        "select": _name,
        "status": _name,
        "multi_select": _names,
        "people": _people,
        "date": _date_start,
        "relation": _relation,
        "number": _scalar,
        "checkbox": _scalar,
        "url": _scalar,
        "email": _scalar,
        "phone_number": _scalar,
        "formula": _computed,
        "rollup": _computed,
        "created_time": _scalar,
        "last_edited_time": _scalar,
        "created_by": _user_name,
        "last_edited_by": _user_name,
        "unique_id": _unique_id,
        "files": _files,
    }
)


def _siblings(name: str, prop: Mapping[str, Any]) -> dict[str, Any]:
    """Secondary values kept beside a property: emails of people, the end of a date range."""
    kind = prop.get("type")
    value = prop.get(kind) if isinstance(kind, str) else None
    if kind == "people":
        users = value if isinstance(value, list) else []
        return {f"{name} emails": [e for e in (_email(mapping(u)) for u in users) if e]}
    if kind in _USER_KINDS:
        return {f"{name} email": _email(mapping(value))}
    if kind == "date":
        end = _str(mapping(value).get("end"))
        return {f"{name} end": end} if end else {}
    return {}
