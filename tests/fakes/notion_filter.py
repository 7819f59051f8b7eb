"""Notion's database filter and sort language, evaluated over raw page objects.

A subset, written from https://developers.notion.com/reference/filter-data-source-entries
and https://developers.notion.com/reference/sort-data-source-entries: compound `and`/`or`,
timestamp filters, and per-type conditions for the property types the fixtures use. A
filter it cannot read is a 400 `validation_error`, as Notion answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

_TEXT = {"title", "rich_text", "url", "email", "phone_number"}


class FilterInvalid(ValueError):
    """Answered as Notion's 400 validation_error with this message."""


def matches(page: Mapping[str, Any], spec: Mapping[str, Any]) -> bool:
    if "and" in spec:
        return all(matches(page, s) for s in spec["and"])
    if "or" in spec:
        return any(matches(page, s) for s in spec["or"])
    if "timestamp" in spec:
        kind = spec["timestamp"]
        return _date(page.get(kind), _condition(spec, kind))
    name = spec.get("property")
    if not isinstance(name, str):
        raise FilterInvalid("body failed validation: body.filter.property should be defined")
    prop = (page.get("properties") or {}).get(name)
    if prop is None:
        raise FilterInvalid(f"Could not find property with name or id: {name}")
    kind = prop["type"]
    cond = _condition(spec, kind)
    value = prop.get(kind)
    if kind in _TEXT:
        text = "".join(t.get("plain_text", "") for t in value) if isinstance(value, list) else value
        return _text(text or "", cond)
    if kind in ("select", "status"):
        return _text((value or {}).get("name") or "", cond)
    if kind == "multi_select":
        return _contains([o.get("name") for o in value or []], cond)
    if kind == "people":
        return _contains([u.get("id") for u in value or []], cond)
    if kind == "relation":
        return _contains([r.get("id") for r in value or []], cond)
    if kind == "checkbox":
        if "equals" in cond:
            return bool(value) is bool(cond["equals"])
        return bool(value) is not bool(cond["does_not_equal"])
    if kind == "number":
        return _number(value, cond)
    if kind == "date":
        return _date((value or {}).get("start"), cond)
    if kind in ("created_time", "last_edited_time"):
        return _date(value, cond)
    raise FilterInvalid(f"filtering on a {kind} property is not supported by this fake")


def sort_key(page: Mapping[str, Any], sort: Mapping[str, Any]) -> tuple[int, Any]:
    """Empty values last, as Notion sorts them."""
    if "timestamp" in sort:
        value: Any = page.get(sort["timestamp"])
    else:
        prop = (page.get("properties") or {}).get(sort.get("property"))
        if prop is None:
            raise FilterInvalid(
                f"Could not find sort property with name or id: {sort.get('property')}"
            )
        raw = prop.get(prop["type"])
        if prop["type"] == "date":
            value = (raw or {}).get("start")
        elif prop["type"] in ("select", "status"):
            value = (raw or {}).get("name")
        elif prop["type"] in _TEXT and isinstance(raw, list):
            value = "".join(t.get("plain_text", "") for t in raw)
        else:
            value = raw
    return (value is None, value if value is not None else "")


def _condition(spec: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    cond = spec.get(kind)
    if not isinstance(cond, Mapping) or len(cond) != 1:
        raise FilterInvalid(
            f"body failed validation: body.filter.{kind} should be an object with one "
            f"condition, instead was `{cond!r}`."
        )
    return cond


def _text(text: str, cond: Mapping[str, Any]) -> bool:
    ((op, arg),) = cond.items()
    ops: dict[str, Callable[[], bool]] = {
        "equals": lambda: text == arg,
        "does_not_equal": lambda: text != arg,
        "contains": lambda: str(arg) in text,
        "does_not_contain": lambda: str(arg) not in text,
        "starts_with": lambda: text.startswith(str(arg)),
        "ends_with": lambda: text.endswith(str(arg)),
        "is_empty": lambda: text == "",
        "is_not_empty": lambda: text != "",
    }
    if op not in ops:
        raise FilterInvalid(f"body failed validation: unknown text condition `{op}`.")
    return ops[op]()


def _contains(values: list[Any], cond: Mapping[str, Any]) -> bool:
    ((op, arg),) = cond.items()
    ops = {
        "contains": lambda: arg in values,
        "does_not_contain": lambda: arg not in values,
        "is_empty": lambda: not values,
        "is_not_empty": lambda: bool(values),
    }
    if op not in ops:
        raise FilterInvalid(f"body failed validation: unknown list condition `{op}`.")
    return bool(ops[op]())


def _number(value: Any, cond: Mapping[str, Any]) -> bool:
    ((op, arg),) = cond.items()
    if op in ("is_empty", "is_not_empty"):
        return (value is None) == (op == "is_empty")
    if value is None:
        return False
    ops = {
        "equals": value == arg,
        "does_not_equal": value != arg,
        "greater_than": value > arg,
        "less_than": value < arg,
        "greater_than_or_equal_to": value >= arg,
        "less_than_or_equal_to": value <= arg,
    }
    if op not in ops:
        raise FilterInvalid(f"body failed validation: unknown number condition `{op}`.")
    return bool(ops[op])


def _date(value: Any, cond: Mapping[str, Any]) -> bool:
    """ISO strings compare as text; a date-only condition compares the date part."""
    ((op, arg),) = cond.items()
    if op in ("is_empty", "is_not_empty"):
        return (value is None) == (op == "is_empty")
    if value is None:
        return False
    if not isinstance(arg, str):
        raise FilterInvalid(f"body failed validation: date condition `{op}` needs an ISO date.")
    mine = str(value)[: len(arg)] if len(arg) == 10 else str(value)
    ops = {
        "equals": mine == arg,
        "before": mine < arg,
        "after": mine > arg,
        "on_or_before": mine <= arg,
        "on_or_after": mine >= arg,
    }
    if op not in ops:
        raise FilterInvalid(f"body failed validation: unknown date condition `{op}`.")
    return ops[op]
