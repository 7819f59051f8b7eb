"""What an event or task is about, as `data.category`, from the `categories:` config.

Pure: `categorize(document, categories)` reads a normalized event and returns a category
name or None. The worker sets `data.category` before matching, and `rules test` and
`simulate` do the same through `with_category`, so `where: {category: bug}` behaves alike
everywhere. Signals, strongest first:

1. where the event comes from: a Notion database id, a GitHub repository (glob);
2. a label the item carries (GitHub labels, a Notion Tags / Labels property);
3. a regular expression matching the title or description;
4. keywords and examples together: a naive Bayes classifier (hub/rules/classifier.py)
   trained on every category's keywords (weighted) and `examples` (one category's
   examples may also come from a file of labelled past tasks, read by
   hub/config/categories.py), with each category's keyword hits (whole words with an
   optional -s, -es, -ed or -ing) as one more feature it weighs, plus a small bonus per
   hit. With a keyword hit the best score wins; without one, only when its probability
   reaches `min_confidence`.

Earlier categories win ties. Measured by benchmarks/categories.py (docs/rules.md). The
config's part (compiling the signals, reading the examples) is hub/config/categories.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from hub.config.categories import (
    DEFAULT_MIN_CONFIDENCE,
    Category,
    CategorySettings,
    category_settings,
    plain_id,
)
from hub.rules.classifier import NaiveBayes, best_of, train

__all__ = [
    "Categories",
    "build_categories",
    "categorize",
    "document_text",
    "train_categories",
    "with_category",
]

#: Text properties read besides the title (Notion properties, GitHub fields).
TEXT_FIELDS = ("Description", "Notes", "Summary", "description", "body", "comment")
LABEL_FIELDS = ("labels", "Labels", "Tags", "tags", "Type", "Category")
#: A keyword counts as this many example titles when training the classifier...
KEYWORD_WEIGHT = 3.0
#: ...and each keyword hit in the text adds this to its category's log score, on top of
#: the classifier's own `k:<category>` feature (which learns how much a hit is worth).
#: Both chosen by cross-validation (benchmarks/categories.py --cv); a bonus of 3 with no
#: keyword feature let product nouns in a lexicon ("export", "search") outvote the rest.
KEYWORD_BONUS = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Categories:
    """The configured categories in order, and the classifier trained on their examples."""

    items: tuple[Category, ...] = ()
    classifier: NaiveBayes | None = None
    min_confidence: float = DEFAULT_MIN_CONFIDENCE


def train_categories(settings: CategorySettings) -> Categories:
    """The classifier trained on every category's keywords (weighted) and examples, plus
    the extra labelled examples; done once, by the composition (hub/runtime.py, the CLI)."""
    items = settings.items
    training = [(c.name, text, 1.0) for c in items for text in c.examples]
    training += [(c.name, keyword, KEYWORD_WEIGHT) for c in items for keyword in c.keywords]
    training += [(name, text, 1.0) for name, text in settings.examples]
    cues = {c.name: c.keyword_hits for c in items if c.keywords}
    return Categories(
        items=items,
        classifier=train(training, cues=cues) if training else None,
        min_confidence=settings.min_confidence,
    )


def build_categories(
    raw: Iterable[Mapping[str, Any]],
    *,
    examples: Iterable[tuple[str, str]] = (),
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
) -> Categories:
    """Compile a `categories:` list and train on it in one step (tests, benchmarks);
    raises ValueError as `category_settings` does."""
    return train_categories(
        category_settings(raw, examples=examples, min_confidence=min_confidence)
    )


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
        plain_id(str(notion[k]))
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
    hits = {category.name: category.keyword_hits(text) for category in categories.items}
    scores = categories.classifier.scores(text) if categories.classifier is not None else {}
    if any(hits.values()):
        # Every category gets a score (in config order, so earlier ones win ties).
        floor = min(scores.values(), default=0.0)
        scores = {name: scores.get(name, floor) + KEYWORD_BONUS * hits[name] for name in hits}
        return best_of(scores)[0]
    label, confidence = best_of({n: scores[n] for n in hits if n in scores})
    return label if confidence >= categories.min_confidence else None


def with_category(document: dict[str, Any], categories: Categories) -> dict[str, Any]:
    """The document with `data.category` set, unless it already has one (a test case's)."""
    data = document.get("data")
    if not categories.items or not isinstance(data, dict) or "category" in data:
        return document
    return {**document, "data": {**data, "category": categorize(document, categories)}}
