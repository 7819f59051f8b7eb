"""Duplicate tasks: how alike a new task is to open ones, from title and description.

Pure (no I/O), so the worker, `rules test` and benchmarks/duplicates.py score alike.
Fuzzy matching is rapidfuzz's token ratios over normalized text (lower case, accents and
punctuation gone, common abbreviations spelled out, stop words dropped), which forgives
rewording, typos and reordered words. Tasks that differ only in what makes them different
work — a version, a date, an environment, a platform, a language, the opposite verb
("Upgrade Node.js to 18" / "… to 20", "Add caching" / "Remove caching") — score high on
text alone, so a conflict between such facets halves the score. Same assignee or project
adds a little. Measured on tests/fixtures/tasks/duplicate_pairs.jsonl (docs/rules.md).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz

__all__ = [
    "DEFAULT_LIMIT",
    "DEFAULT_THRESHOLD",
    "TaskText",
    "find_duplicates",
    "normalize_text",
    "similarity",
]

#: Score from which a pair is called a duplicate (tuned on the fixture's tuning half).
DEFAULT_THRESHOLD = 0.6
#: Likely duplicates reported per new task, best first.
DEFAULT_LIMIT = 3
#: Weight of the description when both tasks have one; the title carries the rest.
DESCRIPTION_WEIGHT = 0.3
ASSIGNEE_BOOST = 0.03
PROJECT_BOOST = 0.02
#: Weight of the shared-words measure (over title and description) against the fuzzy title.
DICE_WEIGHT = 0.5
#: Titles differing by this many words or fewer on each side, all else shared, are
#: different tasks ("Login screen" / "Signup screen").
SWAP_WORDS = 2
#: Multiplier when the two tasks name different versions, dates, environments...
CONFLICT_FACTOR = 0.5


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskText:
    """What duplicate detection compares: a task's words and who / what it belongs to."""

    id: str
    title: str
    description: str = ""
    assignees: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()
    url: str | None = None


_ABBREVIATIONS = {
    "db": "database",
    "dbs": "database",
    "creds": "credentials",
    "cred": "credentials",
    "k8s": "kubernetes",
    "prom": "prometheus",
    "mem": "memory",
    "deps": "dependencies",
    "dep": "dependency",
    "docs": "documentation",
    "doc": "documentation",
    "auth": "authentication",
    "pwd": "password",
    "pw": "password",
    "impl": "implement",
    "svc": "service",
    "config": "configuration",
    "cfg": "configuration",
    "env": "environment",
    "prod": "production",
    "stg": "staging",
    "repo": "repository",
    "msg": "message",
    "pgs": "pages",
    "pg": "page",
    "tf": "terraform",
    "gh": "github",
    "gha": "github actions",
    "lb": "load balancer",
    "oncall": "on call",
    "e2e": "end to end",
    "cert": "certificate",
    "certs": "certificate",
    "setup": "set up",
    "signup": "sign up",
    "login": "log in",
    "pr": "pull request",
    "prs": "pull request",
    "catalogue": "catalog",
    "optimise": "optimize",
    "w": "with",
}

_STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "to",
        "for",
        "on",
        "in",
        "of",
        "and",
        "or",
        "with",
        "is",
        "are",
        "be",
        "been",
        "when",
        "from",
        "at",
        "by",
        "it",
        "its",
        "this",
        "that",
        "should",
        "needs",
        "need",
        "too",
        "after",
        "into",
        "all",
        "our",
        "we",
        "us",
        "i",
        "can",
        "our",
        "there",
        "their",
        "them",
    ]
)

#: Words a task names one of; two tasks naming different ones are different work.
_FACETS: tuple[frozenset[str], ...] = (
    frozenset({"staging", "production", "dev", "development", "sandbox", "qa"}),
    frozenset({"ios", "android", "web", "windows", "macos", "linux"}),
    frozenset({"safari", "chrome", "firefox", "edge"}),
    frozenset(
        [
            "german",
            "french",
            "spanish",
            "italian",
            "dutch",
            "japanese",
            "korean",
            "portuguese",
            "chinese",
            "polish",
            "english",
            "swedish",
        ]
    ),
    frozenset(
        ["spain", "italy", "france", "germany", "japan", "korea", "brazil", "uk", "us", "canada"]
    ),
    frozenset({"emea", "apac", "latam", "amer", "eu", "na"}),
    frozenset(
        [
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ]
    ),
    frozenset(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]),
    frozenset({"black", "cyber"}),
    frozenset({"import", "export"}),
    frozenset({"upload", "download"}),
)

#: Leading verbs by the kind of work they start; disjoint kinds are different tasks.
_VERB_KINDS: Mapping[str, frozenset[str]] = {
    verb: frozenset(kinds.split())
    for verb, kinds in {
        "add": "make",
        "create": "make",
        "implement": "make",
        "build": "make",
        "introduce": "make",
        "set": "make",
        "support": "make",
        "record": "make",
        "write": "write",
        "draft": "write",
        "document": "write",
        "review": "review",
        "audit": "review",
        "test": "review",
        "check": "review",
        "remove": "remove",
        "delete": "remove",
        "drop": "remove",
        "decommission": "remove",
        "shut": "remove",
        "disable": "remove",
        "deprecate": "remove",
        "cancel": "remove",
        "purge": "remove",
        "enable": "enable",
        "turn": "enable",
        "fix": "fix",
        "resolve": "fix",
        "repair": "fix",
        "investigate": "investigate",
        "debug": "investigate",
        "diagnose": "investigate",
        "design": "design",
        "redesign": "design",
        "edit": "edit",
        "update": "edit upgrade",
        "refresh": "edit",
        "upgrade": "upgrade",
        "bump": "upgrade",
        "migrate": "upgrade move",
        "move": "move",
        "renew": "renew",
        "extend": "renew",
    }.items()
}

_NON_WORD = re.compile(r"[^a-z0-9]+")

#: Words that say the same thing in task titles, mapped to one of them.
_SYNONYMS = {
    "draft": "write",
    "delete": "remove",
    "drop": "remove",
    "old": "deprecated",
    "legacy": "deprecated",
    "big": "large",
    "larger": "large",
    "bigger": "large",
    "slow": "latency",
    "freeze": "hang",
    "freezes": "hang",
    "unresponsive": "hang",
    "broken": "break",
    "fails": "fail",
    "failing": "fail",
    "failed": "fail",
    "customer": "user",
    "customers": "user",
    "users": "user",
    "signed": "log",
    "logged": "log",
    "reset": "reset",
}


def _stem(word: str) -> str:
    """Crude English suffix stripping: enough that "crashes"/"crash" and "times"/"time" meet."""
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed"):
        return word[:-2]
    if len(word) > 4 and word.endswith(("ses", "xes", "zes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def normalize_text(text: str) -> str:
    """Lower case ASCII words with abbreviations spelled out and stop words dropped."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words: list[str] = []
    for word in _NON_WORD.split(ascii_text.lower()):
        if not word:
            continue
        for part in _ABBREVIATIONS.get(word, word).split():
            if part in _STOP_WORDS:
                continue
            words.append(_SYNONYMS.get(part, _stem(part)))
    return " ".join(words)


def _facets(words: Iterable[str]) -> list[frozenset[str]]:
    found = set(words)
    return [group & found for group in _FACETS]


def _numbers(words: Iterable[str]) -> frozenset[str]:
    return frozenset(w for w in words if any(c.isdigit() for c in w))


def _verb_kinds(words: list[str]) -> frozenset[str]:
    return _VERB_KINDS.get(words[0], frozenset()) if words else frozenset()


def _all_verb_kinds(words: list[str]) -> frozenset[str]:
    return frozenset(k for w in words for k in _VERB_KINDS.get(w, ()))


def _conflict(a_title: str, b_title: str, a_all: str, b_all: str) -> bool:
    """Do the two tasks name different versions, dates, places or opposite actions?"""
    a_words, b_words = a_title.split(), b_title.split()
    a_numbers, b_numbers = _numbers(a_words), _numbers(b_words)
    if a_numbers and b_numbers and a_numbers != b_numbers:
        return True
    for left, right in zip(_facets(a_all.split()), _facets(b_all.split()), strict=True):
        if left and right and not left & right:
            return True
    a_verb, b_verb = _verb_kinds(a_words), _verb_kinds(b_words)
    return bool(
        a_verb
        and b_verb
        and not a_verb & _all_verb_kinds(b_words)
        and not b_verb & _all_verb_kinds(a_words)
    )


def _ratio(a: str, b: str) -> float:
    if not a or not b:
        return 0.0
    return (fuzz.token_sort_ratio(a, b) + fuzz.token_set_ratio(a, b)) / 200.0


def _same_word(a: str, b: str) -> bool:
    """Equal, or one typo apart (long enough that a typo cannot make another word)."""
    shorter = min(len(a), len(b))
    return a == b or (shorter >= 4 and fuzz.ratio(a, b) >= (80 if shorter >= 5 else 85))


def _unmatched(words: list[str], others: list[str]) -> list[str]:
    return [w for w in words if not any(_same_word(w, o) for o in others)]


def _dice(a: list[str], b: list[str]) -> float:
    """Share of words (typos forgiven) the two texts have in common."""
    if not a or not b:
        return 0.0
    matched = len(a) - len(_unmatched(a, b)) + len(b) - len(_unmatched(b, a))
    return matched / (len(a) + len(b))


def _swapped(a: list[str], b: list[str]) -> bool:
    """A word or two swapped in place in otherwise the same title: "Login screen broken" /
    "Signup screen broken" name different things, while rewording moves words around."""
    b = [next((w for w in a if _same_word(w, o)), o) for o in b]  # typos read as the word
    ops = difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
    changed = [op for op in ops if op[0] != "equal"]
    shared = sum(i2 - i1 for tag, i1, i2, _, _ in ops if tag == "equal")
    if len(changed) != 1 or shared < 2:
        return False
    tag, i1, i2, j1, j2 = changed[0]
    if _same_word("".join(a[i1:i2]), "".join(b[j1:j2])):
        return False  # "kickoff" / "kick off": one word written two ways
    return tag == "replace" and i2 - i1 <= SWAP_WORDS and j2 - j1 <= SWAP_WORDS


def similarity(a: TaskText, b: TaskText) -> float:
    """How likely `b` is the same task as `a`, from 0 to 1 (boosts may pass 1 a little)."""
    a_title, b_title = normalize_text(a.title), normalize_text(b.title)
    a_desc, b_desc = normalize_text(a.description), normalize_text(b.description)
    a_all, b_all = f"{a_title} {a_desc}", f"{b_title} {b_desc}"
    score = (1 - DICE_WEIGHT) * _ratio(a_title, b_title) + DICE_WEIGHT * _dice(
        a_all.split(), b_all.split()
    )
    if a_desc and b_desc:
        score = (1 - DESCRIPTION_WEIGHT) * score + DESCRIPTION_WEIGHT * _ratio(a_desc, b_desc)
    if _conflict(a_title, b_title, a_all, b_all) or _swapped(a_title.split(), b_title.split()):
        score *= CONFLICT_FACTOR
    if set(a.assignees) & set(b.assignees):
        score += ASSIGNEE_BOOST
    if set(a.projects) & set(b.projects):
        score += PROJECT_BOOST
    return score


def find_duplicates(
    task: TaskText,
    candidates: Iterable[TaskText],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    limit: int = DEFAULT_LIMIT,
) -> list[dict[str, Any]]:
    """Open tasks scoring at least `threshold` against `task`, best first:
    `[{id, title, url, score}]` (the shape rules see as `event.data.duplicates`)."""
    scored = [
        (round(min(similarity(task, other), 1.0), 3), other)
        for other in candidates
        if other.id != task.id
    ]
    found = sorted((s for s in scored if s[0] >= threshold), key=lambda s: -s[0])[:limit]
    return [
        {"id": other.id, "title": other.title, "url": other.url, "score": score}
        for score, other in found
    ]
