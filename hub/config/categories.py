"""`categories:` and `categories_examples:` of switchboard.yaml, compiled and checked.

What this module makes is config: each category's signals (keywords, regular
expressions, labels, repositories, Notion databases, example titles) and the labelled
examples read from a team's file. What they mean for an event (the classifier trained on
them, `categorize`) is hub/rules/categories.py; the composition trains it once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_MIN_CONFIDENCE",
    "Category",
    "CategorySettings",
    "category_settings",
    "load_examples",
    "plain_id",
]

#: Below this posterior, the classifier's guess is not used (no category rather than noise).
DEFAULT_MIN_CONFIDENCE = 0.5


@dataclass(frozen=True, slots=True, kw_only=True)
class Category:
    name: str
    keywords: tuple[str, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()
    labels: frozenset[str] = frozenset()
    repos: tuple[str, ...] = ()
    databases: frozenset[str] = frozenset()
    examples: tuple[str, ...] = ()
    _keyword_re: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    def keyword_hits(self, text: str) -> int:
        return len(self._keyword_re.findall(text)) if self._keyword_re is not None else 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CategorySettings:
    """The configured categories in order, and the extra labelled examples to train on."""

    items: tuple[Category, ...] = ()
    #: (category, text) pairs, e.g. a team's closed tasks (`categories_examples:`).
    examples: tuple[tuple[str, str], ...] = ()
    min_confidence: float = DEFAULT_MIN_CONFIDENCE


def category_settings(
    raw: Iterable[Mapping[str, Any]],
    *,
    examples: Iterable[tuple[str, str]] = (),
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
) -> CategorySettings:
    """Compile the `categories:` list (already schema-checked); raise ValueError naming the
    category and the bad regular expression, or the unknown category of an example."""
    items = []
    for spec in raw:
        name = str(spec["name"])
        keywords = tuple(str(k).lower() for k in spec.get("keywords") or ())
        patterns = []
        for pattern in spec.get("regex") or ():
            try:
                patterns.append(re.compile(str(pattern), re.IGNORECASE))
            except re.error as exc:
                raise ValueError(f"category '{name}': regex {pattern!r}: {exc}") from exc
        keyword_re = (
            re.compile(
                r"\b(?:"
                + "|".join(re.escape(k) for k in sorted(keywords, key=len)[::-1])
                + r")(?:s|es|ed|ing)?\b"
            )
            if keywords
            else None
        )
        items.append(
            Category(
                name=name,
                keywords=keywords,
                patterns=tuple(patterns),
                labels=frozenset(str(label).lower() for label in spec.get("labels") or ()),
                repos=tuple(str(r) for r in spec.get("repos") or ()),
                databases=frozenset(plain_id(str(d)) for d in spec.get("databases") or ()),
                examples=tuple(str(e) for e in spec.get("examples") or ()),
                _keyword_re=keyword_re,
            )
        )
    names = {c.name for c in items}
    extra = tuple(examples)
    for name, text in extra:
        if name not in names:
            raise ValueError(f"example {text[:60]!r}: category '{name}' is not configured")
    return CategorySettings(items=tuple(items), examples=extra, min_confidence=min_confidence)


def load_examples(path: Path) -> list[tuple[str, str]]:
    """(category, "title. description") pairs from a JSON-lines file of labelled tasks
    (`{"category": ..., "title": ..., "description": ...}` a line); read once at start-up."""
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            text = ". ".join(str(item[k]) for k in ("title", "description") if item.get(k))
            pairs.append((str(item["category"]), text))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{path}:{number}: expected a JSON object with category and title ({exc})"
            ) from exc
    return pairs


def plain_id(value: str) -> str:
    """A Notion id as config and webhooks may both spell it: no dashes, lower case."""
    return value.replace("-", "").lower()
