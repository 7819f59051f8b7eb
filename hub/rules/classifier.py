"""A small multinomial naive Bayes text classifier, trained at load time on config examples.

Pure Python and deterministic: no model file, nothing downloaded. Features are lightly
stemmed words ("deploys", "deployed" and "deploying" share evidence with "deploy") and word
bigrams ("load balancer", "landing page"), with Laplace smoothing. Training pairs carry a
weight so a category's hand-written keywords can count more than one example title. The
prediction comes with per-label log scores so callers can add rule evidence before choosing.
Chosen on the tuning half of the benchmark set (benchmarks/categories.py): character n-grams
and smaller smoothing did not help there.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise

__all__ = ["NaiveBayes", "features", "stem", "train"]

_WORD = re.compile(r"[a-z0-9]+")
#: Laplace smoothing.
ALPHA = 1.0
#: Longest first; a suffix is only removed when at least three letters remain.
_SUFFIXES = ("ations", "ation", "ments", "ment", "ings", "ing", "ies", "ers", "er", "ed", "es", "s")


def stem(word: str) -> str:
    """`word` without one common English suffix (crude, but shared by training and prediction)."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def features(text: str) -> list[str]:
    """Stemmed lower-case words and the bigrams of consecutive stemmed words."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    words = [stem(w) for w in _WORD.findall(ascii_text)]
    return [f"w:{w}" for w in words] + [f"b:{a}_{b}" for a, b in pairwise(words)]


@dataclass(frozen=True, slots=True)
class NaiveBayes:
    """Per-class feature log likelihoods (uniform priors: categories are not sized alike)."""

    labels: tuple[str, ...]
    log_likelihood: Mapping[str, Mapping[str, float]]
    log_unseen: Mapping[str, float]
    vocabulary: frozenset[str]

    def scores(self, text: str) -> dict[str, float]:
        """Log score per label; empty when the text shares no feature with the training set."""
        feats = [f for f in features(text) if f in self.vocabulary]
        if not feats:
            return {}
        return {
            c: sum(self.log_likelihood[c].get(f, self.log_unseen[c]) for f in feats)
            for c in self.labels
        }

    def predict(self, text: str) -> tuple[str | None, float]:
        """The most likely label and its posterior probability; (None, 0) without evidence."""
        return best_of(self.scores(text))


def best_of(scores: Mapping[str, float]) -> tuple[str | None, float]:
    """The top label of log scores and its softmax probability (first label wins ties)."""
    if not scores:
        return None, 0.0
    best = max(scores, key=lambda c: scores[c])
    top = scores[best]
    return best, 1.0 / sum(math.exp(s - top) for s in scores.values())


def train(examples: Iterable[tuple[str, str, float]]) -> NaiveBayes:
    """Fit on (label, text, weight) triples."""
    counts: dict[str, dict[str, float]] = {}
    for label, text, weight in examples:
        counter = counts.setdefault(label, {})
        for feature in features(text):
            counter[feature] = counter.get(feature, 0.0) + weight
    vocabulary = frozenset(f for c in counts.values() for f in c)
    size = len(vocabulary) or 1
    log_likelihood: dict[str, dict[str, float]] = {}
    log_unseen: dict[str, float] = {}
    for label, counter in counts.items():
        denominator = sum(counter.values()) + ALPHA * size
        log_likelihood[label] = {f: math.log((n + ALPHA) / denominator) for f, n in counter.items()}
        log_unseen[label] = math.log(ALPHA / denominator)
    return NaiveBayes(
        labels=tuple(counts),
        log_likelihood=log_likelihood,
        log_unseen=log_unseen,
        vocabulary=vocabulary,
    )
