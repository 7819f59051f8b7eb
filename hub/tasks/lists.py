"""Task lists in four formats (markdown checklist, YAML, JSON, plain text) → normalized tasks.

Pure: no store, no network. Every line that is not a task worth creating is reported with
its line number and the reason, so a person can fix the list and send it again. A task's
`key` is a hash of its normalized content: sending the same task twice is recognised.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import yaml

Format = Literal["markdown", "yaml", "json", "text"]
FORMATS: tuple[Format, ...] = ("markdown", "yaml", "json", "text")
#: A list longer than this is refused whole: split it.
MAX_TASKS = 5000
TITLE_LIMIT = 2000  # Notion's rich text limit for the title

_CHECKBOX = re.compile(r"^\s*[-*+]\s+\[(?P<mark>[ xX])\]\s*(?P<rest>.*)$")
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(?P<rest>.*)$")
_HANDLE = re.compile(r"^@(?P<name>[\w][\w.-]*)$")
_LABEL = re.compile(r"^#(?P<name>[\w][\w/-]*)$")
_DUE = re.compile(r"^due:(?P<date>\S+)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True, kw_only=True)
class Task:
    """One task to create: what the `intake.<name>` event carries in `data.fields`."""

    line: int
    title: str
    assignees: tuple[str, ...] = ()
    due: str | None = None
    labels: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The content hash: the same title, people, due date and labels give the same key."""
        content = {
            "title": " ".join(self.title.split()).casefold(),
            "assignees": sorted(a.casefold() for a in self.assignees),
            "due": self.due,
            "labels": sorted(label.casefold() for label in self.labels),
        }
        raw = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(raw).hexdigest()[:32]

    def fields(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "assignee": self.assignees[0] if self.assignees else None,
            "assignees": list(self.assignees),
            "due": self.due,
            "labels": list(self.labels),
            "line": self.line,
            "key": self.key,
        }


@dataclass(frozen=True, slots=True)
class Rejected:
    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class TaskList:
    format: Format
    tasks: tuple[Task, ...] = ()
    rejected: tuple[Rejected, ...] = field(default_factory=tuple)


class ListError(ValueError):
    """The whole list is unusable (bad YAML/JSON, unknown format, too long)."""


def detect_format(text: str, *, hint: str | None = None) -> Format:
    """`hint` is a format name, a content type or a file name; else sniff the text."""
    if hint:
        lowered = hint.lower().split(";")[0].strip()
        for fmt, words in _HINTS.items():
            if lowered in words or lowered.endswith(tuple(w for w in words if w.startswith("."))):
                return fmt
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        return "json"
    if any(_CHECKBOX.match(line) for line in text.splitlines()):
        return "markdown"
    return "text"


_HINTS: dict[Format, tuple[str, ...]] = {
    "markdown": ("markdown", "md", "text/markdown", "text/x-markdown", ".md", ".markdown"),
    "yaml": ("yaml", "yml", "application/yaml", "application/x-yaml", "text/yaml", ".yaml", ".yml"),
    "json": ("json", "application/json", ".json"),
    "text": ("text", "txt", "text/plain", ".txt"),
}


def parse_task_list(text: str, fmt: Format) -> TaskList:
    """Normalize a list; ListError when the document as a whole cannot be read."""
    if fmt in ("markdown", "text"):
        items: list[tuple[int, Any]] = []
        rejected: list[Rejected] = []
        for number, line in enumerate(text.splitlines(), start=1):
            item = _line_item(line, fmt)
            if isinstance(item, Rejected):
                rejected.append(Rejected(number, item.reason))
            elif item is not None:
                items.append((number, item))
    else:
        items, rejected = _document_items(text, fmt), []
    if len(items) > MAX_TASKS:
        raise ListError(f"{len(items)} tasks in one list; send at most {MAX_TASKS} at a time")
    tasks: list[Task] = []
    first_line: dict[str, int] = {}
    for number, item in items:
        try:
            task = _task(number, item)
        except ValueError as exc:
            rejected.append(Rejected(number, str(exc)))
            continue
        if task.key in first_line:
            rejected.append(Rejected(number, f"same task as line {first_line[task.key]}"))
            continue
        first_line[task.key] = number
        tasks.append(task)
    return TaskList(fmt, tuple(tasks), tuple(sorted(rejected, key=lambda r: r.line)))


def _line_item(line: str, fmt: Format) -> str | Rejected | None:
    """The task text of one line, None for a line that is not meant as a task, or why not."""
    if not line.strip():
        return None
    if fmt == "text":
        return line.strip()
    if line.lstrip().startswith("#"):
        return None  # a markdown heading
    if match := _CHECKBOX.match(line):
        if match["mark"] != " ":
            return Rejected(0, "already checked off: only open items [ ] become tasks")
        return match["rest"]
    if match := _BULLET.match(line):
        return match["rest"]
    return Rejected(0, "not a list item: write '- [ ] task' (or '- task')")


def _document_items(text: str, fmt: Format) -> list[tuple[int, Any]]:
    """Items of a YAML or JSON list (or of its `tasks:`), each with its 1-based line."""
    if fmt == "json":
        try:
            json.loads(text)
        except ValueError as exc:
            raise ListError(f"not valid JSON: {exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ListError(f"not valid {fmt.upper()}: {exc}".replace("\n", " ")) from None
    if isinstance(node, yaml.MappingNode):
        found = next(
            (v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == "tasks"),
            None,
        )
        if found is None:
            raise ListError("a mapping needs a `tasks:` list")
        node = found
    if node is None:
        return []
    if not isinstance(node, yaml.SequenceNode):
        raise ListError("expected a list of tasks (or a mapping with a `tasks:` list)")
    out: list[tuple[int, Any]] = []
    for child in node.value:
        value = yaml.safe_load(yaml.serialize(child))
        out.append((child.start_mark.line + 1, value))
    return out


def _task(line: int, item: Any) -> Task:
    """A task from a text line or a mapping; ValueError says what is wrong with it."""
    if isinstance(item, str):
        return _task_from_text(line, item)
    if not isinstance(item, Mapping):
        raise ValueError("a task is a text or a mapping with `title`")
    unknown = sorted(str(k) for k in item if k not in _KEYS)
    if unknown:
        raise ValueError(f"unknown key {', '.join(unknown)}; use {', '.join(_KEYS)}")
    title = item.get("title")
    if not isinstance(title, str):
        raise ValueError("a task needs a `title` text")
    people = item.get("assignees", item.get("assignee")) or []
    labels = item.get("labels", []) or []
    due = item.get("due")
    return _checked(
        line,
        title,
        [people] if isinstance(people, str) else people,
        None if due is None else str(due),
        [labels] if isinstance(labels, str) else labels,
    )


_KEYS = ("title", "assignee", "assignees", "due", "labels")


def _task_from_text(line: int, text: str) -> Task:
    words: list[str] = []
    people: list[str] = []
    labels: list[str] = []
    due: str | None = None
    for word in text.split():
        if match := _HANDLE.match(word):
            people.append(match["name"])
        elif match := _LABEL.match(word):
            labels.append(match["name"])
        elif match := _DUE.match(word):
            if due is not None:
                raise ValueError("two due: dates; give one")
            due = match["date"]
        else:
            words.append(word)
    return _checked(line, " ".join(words), people, due, labels)


def _checked(line: int, title: str, people: Any, due: str | None, labels: Any) -> Task:
    title = " ".join(title.split())
    if not title:
        raise ValueError("no title: the line has only @people, #labels or due:")
    if len(title) > TITLE_LIMIT:
        raise ValueError(f"title is {len(title)} characters; Notion takes {TITLE_LIMIT}")
    if not isinstance(people, list) or not all(isinstance(p, str) for p in people):
        raise ValueError("assignees must be names")
    if not isinstance(labels, list) or not all(isinstance(p, str) for p in labels):
        raise ValueError("labels must be words")
    if due is not None:
        try:
            date.fromisoformat(due)
        except ValueError:
            raise ValueError(f"due date {due!r} is not a date; write due:YYYY-MM-DD") from None
    return Task(
        line=line,
        title=title,
        assignees=tuple(dict.fromkeys(p.lstrip("@") for p in people)),
        due=due,
        labels=tuple(dict.fromkeys(lb.lstrip("#") for lb in labels)),
    )
