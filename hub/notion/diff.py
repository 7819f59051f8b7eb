"""What changed on a page between two snapshots.

Notion sends ids only, so `changes` come from comparing the flattened page the worker
fetched with the last snapshot it stored. (Bursts of deliveries about one page are merged
before the fetch: the source's coalescing window in hub/pipeline/process.py.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["diff_properties"]


def diff_properties(
    before: Mapping[str, Any] | None, after: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """`{name: {"from": old, "to": new}}` for every flattened property that differs.

    First sight (`before` is None): every property, each `from` None. A property present
    on one side only compares against None, so a deleted property shows `to: None`.
    """
    if before is None:
        return {name: {"from": None, "to": value} for name, value in after.items()}
    changes: dict[str, dict[str, Any]] = {}
    for name in [*after, *(k for k in before if k not in after)]:
        old, new = before.get(name), after.get(name)
        if old != new:
            changes[name] = {"from": old, "to": new}
    return changes
