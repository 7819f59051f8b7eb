"""`categories:` of switchboard.yaml: what an event or task is about, as `data.category`.

Pure: `categorize(document, categories)` reads a normalized event and returns a category
name or None. The worker sets `data.category` before matching, and `rules test` and
`simulate` do the same through `with_category`, so `where: {category: bug}` behaves alike
everywhere. Signals, strongest first:

1. where the event comes from: a Notion database id, a GitHub repository (glob);
2. a label the item carries (GitHub labels, a Notion Tags / Labels property);
3. a regular expression matching the title or description;
4. keywords in the title or description, as whole words with an optional -s, -es, -ed
   or -ing (most hits wins);
5. a naive Bayes classifier (hub/rules/classifier.py) trained on every category's
   `examples` and keywords, when its posterior reaches `min_confidence`.

Earlier categories win ties. Measured by benchmarks/categories.py (docs/rules.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from hub.rules.classifier import NaiveBayes, train

__all__ = [
    "Categories",
    "Category",
    "build_categories",
    "categorize",
    "document_text",
    "with_category",
]

#: Below this posterior, the classifier's guess is not used (no category rather than noise).
DEFAULT_MIN_CONFIDENCE = 0.5
#: Text properties read besides the title (Notion properties, GitHub fields).
TEXT_FIELDS = ("Description", "Notes", "Summary", "description", "body", "comment")
LABEL_FIELDS = ("labels", "Labels", "Tags", "tags", "Type", "Category")


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
class Categories:
    """The configured categories in order, and the classifier trained on their examples."""

    items: tuple[Category, ...] = ()
    classifier: NaiveBayes | None = None
    min_confidence: float = DEFAULT_MIN_CONFIDENCE


def build_categories(
    raw: Iterable[Mapping[str, Any]], *, min_confidence: float = DEFAULT_MIN_CONFIDENCE
) -> Categories:
    """Compile the `categories:` list (already schema-checked); raise ValueError naming the
    category and the bad regular expression."""
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
                databases=frozenset(_plain_id(str(d)) for d in spec.get("databases") or ()),
                examples=tuple(str(e) for e in spec.get("examples") or ()),
                _keyword_re=keyword_re,
            )
        )
    training = [(c.name, text) for c in items for text in (*c.examples, *c.keywords)]
    return Categories(
        items=tuple(items),
        classifier=train(training) if any(c.examples for c in items) else None,
        min_confidence=min_confidence,
    )


def _plain_id(value: str) -> str:
    return value.replace("-", "").lower()


def document_text(document: Mapping[str, Any]) -> str:
    """Title and description-like fields of an event, as one lower-case text."""
    data = document.get("data") or {}
    fields = data.get("fields") or {}
    parts = [str((data.get("entity") or {}).get("title") or ""), str(fields.get("title") or "")]
    parts += [str(fields[k]) for k in TEXT_FIELDS if isinstance(fields.get(k), str)]
    return " ".join(p for p in parts if p).lower()


def _labels(fields: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    for key in LABEL_FIELDS:
        value = fields.get(key)
        values = value if isinstance(value, list) else [value]
        found |= {str(v).lower() for v in values if isinstance(v, str) and v}
    return found


def _origin(document: Mapping[str, Any], fields: Mapping[str, Any]) -> tuple[set[str], str]:
    """(Notion database / data source ids, GitHub owner/repo) the event comes from."""
    notion = fields.get("notion") or {}
    ids = {
        _plain_id(str(notion[k]))
        for k in ("parent_id", "data_source_id")
        if isinstance(notion, Mapping) and notion.get(k)
    }
    repo = str(fields.get("repository") or "")
    source = str(document.get("source") or "")
    if not repo and source.startswith("github/"):
        repo = source.removeprefix("github/")
    return ids, repo


def categorize(document: Mapping[str, Any], categories: Categories) -> str | None:
    """The category of a normalized event, or None when nothing points to one."""
    if not categories.items:
        return None
    data = document.get("data") or {}
    fields = data.get("fields") or {}
    databases, repo = _origin(document, fields)
    for category in categories.items:
        if databases & category.databases or (
            repo and any(fnmatchcase(repo, r) for r in category.repos)
        ):
            return category.name
    labels = _labels(fields)
    for category in categories.items:
        if labels & category.labels:
            return category.name
    text = document_text(document)
    if not text:
        return None
    for category in categories.items:
        if any(p.search(text) for p in category.patterns):
            return category.name
    hits = [(category.keyword_hits(text), -i) for i, category in enumerate(categories.items)]
    best, order = max(hits)
    if best > 0:
        return categories.items[-order].name
    if categories.classifier is not None:
        label, confidence = categories.classifier.predict(text)
        if label is not None and confidence >= categories.min_confidence:
            return label
    return None


def with_category(document: dict[str, Any], categories: Categories) -> dict[str, Any]:
    """The document with `data.category` set, unless it already has one (a test case's)."""
    data = document.get("data")
    if not categories.items or not isinstance(data, dict) or "category" in data:
        return document
    return {**document, "data": {**data, "category": categorize(document, categories)}}
