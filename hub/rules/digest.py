"""Template filters for summaries and reports: counting, grouping, progress bars.

Plain functions over plain values (query results are lists of dicts), registered in the
sandboxed template environment. They never call out and never raise on odd data: a
missing attribute counts as "nobody", a bad percentage draws an empty bar.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hub.rules.workflow import WORKFLOW_FILTERS

__all__ = [
    "DIGEST_FILTERS",
    "assigned_to",
    "completion",
    "count_by",
    "progress_bar",
    "report_items",
    "tally",
]

UNASSIGNED = "(nobody)"


def count_by(items: Iterable[Any], attribute: str) -> list[dict[str, Any]]:
    """`[{name, count}]` per value of a dotted attribute, most first; a list value counts
    once for each member (a task with two assignees counts for both)."""
    counts: dict[str, int] = {}
    for item in items or []:
        for name in _values(item, attribute):
            counts[name] = counts.get(name, 0) + 1
    return [
        {"name": name, "count": n}
        for name, n in sorted(counts.items(), key=lambda c: (-c[1], c[0]))
    ]


def tally(groups: Mapping[str, Iterable[Any]], attribute: str) -> list[dict[str, Any]]:
    """`{done: [...], in_progress: [...]} | tally('fields.Assignee')` →
    `[{name: Ada, done: 2, in_progress: 1}, ...]`, one row per person, by name."""
    rows: dict[str, dict[str, Any]] = {}
    for group, items in groups.items():
        for item in items or []:
            for name in _values(item, attribute):
                row = rows.setdefault(name, {"name": name, **{g: 0 for g in groups}})
                row[group] += 1
    return [rows[name] for name in sorted(rows)]


def progress_bar(fraction: Any, width: int = 10) -> str:
    """`0.7 | progress_bar` → `███████░░░` (a fraction 0..1; percentages over 1 are /100)."""
    try:
        value = float(fraction)
    except (TypeError, ValueError):
        value = 0.0
    if value > 1:
        value /= 100
    width = max(1, min(int(width), 50))
    filled = round(max(0.0, min(1.0, value)) * width)
    return "█" * filled + "░" * (width - filled)


def completion(
    items: Iterable[Any],
    attribute: str,
    labels: Iterable[Any] | None = None,
    status: str = "fields.Status",
    done: str = "Done",
) -> list[dict[str, Any]]:
    """Per value of `attribute` (a milestone relation, a project select): how many of the
    items are done. `labels` (another query's pages) names relation ids by title and keeps
    only those rows, in their order: `{name, id, done, total, fraction, percent}`."""
    totals: dict[str, list[int]] = {}
    for item in items or []:
        finished = done in _values(item, status)
        for value in _values(item, attribute):
            counts = totals.setdefault(_plain_id(value), [0, 0])
            counts[0] += int(finished)
            counts[1] += 1
    if labels is None:
        order = [(key, key) for key in sorted(totals)]
    else:
        order = [
            (_plain_id(str(page.get("id"))), str(page.get("title") or page.get("id")))
            for page in labels
            if isinstance(page, Mapping)
        ]
    rows = []
    for key, name in order:
        done_count, total = totals.get(key, [0, 0])
        fraction = done_count / total if total else 0.0
        rows.append(
            {
                "name": name,
                "id": key,
                "done": done_count,
                "total": total,
                "fraction": round(fraction, 4),
                "percent": round(fraction * 100),
            }
        )
    return rows


def assigned_to(items: Iterable[Any], who: Any, attribute: str = "fields.Assignee") -> list[Any]:
    """Items whose people property names `who` (a name or an email, any case; a list of
    them matches any). Emails are the `<attribute> emails` sibling Notion pages carry."""
    wanted = {str(w).strip().lower() for w in (who if isinstance(who, list) else [who]) if w}
    out = []
    for item in items or []:
        known = _values(item, attribute) + _values(item, attribute + " emails")
        if wanted & {k.lower() for k in known}:
            out.append(item)
    return out


def report_items(items: Iterable[Any]) -> list[dict[str, Any]]:
    """Query pages or stored events as `{title, url, assignee, due, status}`, the shape
    report templates (templates/weekly-report.*.j2) read."""
    out = []
    for item in items or []:
        if not isinstance(item, Mapping):
            continue
        data = item.get("data")
        if isinstance(data, Mapping):  # a stored event document
            entity = data.get("entity") if isinstance(data.get("entity"), Mapping) else {}
            fields = data.get("fields") if isinstance(data.get("fields"), Mapping) else {}
            title, url = (entity or {}).get("title"), (entity or {}).get("url")
        else:  # a notion.query page
            fields = item.get("fields") if isinstance(item.get("fields"), Mapping) else {}
            title, url = item.get("title"), item.get("url")
        people = _values({"v": (fields or {}).get("Assignee")}, "v")
        out.append(
            {
                "title": str(title or ""),
                "url": url,
                "assignee": ", ".join(p for p in people if p != UNASSIGNED),
                "due": (fields or {}).get("Due"),
                "status": (fields or {}).get("Status"),
            }
        )
    return out


def _plain_id(value: str) -> str:
    """Notion ids are written with and without dashes; compare them without."""
    return value.replace("-", "").lower() if len(value.replace("-", "")) == 32 else value


def _values(item: Any, attribute: str) -> list[str]:
    node = item
    for part in attribute.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    if isinstance(node, list):
        names = [str(v) for v in node if v not in (None, "")]
        return names or [UNASSIGNED]
    return [UNASSIGNED] if node in (None, "") else [str(node)]


DIGEST_FILTERS: dict[str, Callable[..., Any]] = {
    "assigned_to": assigned_to,
    "completion": completion,
    "count_by": count_by,
    "tally": tally,
    "progress_bar": progress_bar,
    "report_items": report_items,
    **WORKFLOW_FILTERS,  # stalled, pick_assignee, if_previous_open (#20)
}
