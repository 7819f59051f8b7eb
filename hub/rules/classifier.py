"""A small multinomial naive Bayes text classifier, trained at load time on config examples.

Pure Python and deterministic: no model file, nothing downloaded. Features are words and
character 4-grams inside words (so "deploy", "deployment" and a typo'd "deplyment" share
evidence), with Laplace smoothing; the prediction comes with its posterior probability so
callers can refuse to guess on weak evidence.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["NaiveBayes", "features", "train"]

_WORD = re.compile(r"[a-z0-9]+")
_NGRAM = 4
#: Laplace smoothing; small, because most features are seen once or twice.
ALPHA = 0.3


def features(text: str) -> list[str]:
    """Lower-case words and the character 4-grams of each (padded) word."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    out: list[str] = []
    for word in _WORD.findall(ascii_text):
        out.append(f"w:{word}")
        padded = f"<{word}>"
        out += [f"c:{padded[i : i + _NGRAM]}" for i in range(max(1, len(padded) - _NGRAM + 1))]
    return out


@dataclass(frozen=True, slots=True)
class NaiveBayes:
    """Log priors and per-class feature log likelihoods."""

    labels: tuple[str, ...]
    log_prior: Mapping[str, float]
    log_likelihood: Mapping[str, Mapping[str, float]]
    log_unseen: Mapping[str, float]

    def predict(self, text: str) -> tuple[str | None, float]:
        """The most likely label and its posterior probability; (None, 0) without evidence."""
        feats = [f for f in features(text) if any(f in self.log_likelihood[c] for c in self.labels)]
        if not feats or not self.labels:
            return None, 0.0
        scores = {
            c: self.log_prior[c]
            + sum(self.log_likelihood[c].get(f, self.log_unseen[c]) for f in feats)
            for c in self.labels
        }
        best = max(self.labels, key=lambda c: scores[c])
        top = scores[best]
        total = sum(math.exp(s - top) for s in scores.values())
        return best, 1.0 / total


def train(examples: Iterable[tuple[str, str]]) -> NaiveBayes:
    """Fit on (label, text) pairs."""
    counts: dict[str, Counter[str]] = {}
    docs: Counter[str] = Counter()
    for label, text in examples:
        counts.setdefault(label, Counter()).update(features(text))
        docs[label] += 1
    vocabulary = {f for c in counts.values() for f in c}
    size = len(vocabulary) or 1
    total_docs = sum(docs.values()) or 1
    log_likelihood: dict[str, dict[str, float]] = {}
    log_unseen: dict[str, float] = {}
    for label, counter in counts.items():
        denominator = sum(counter.values()) + ALPHA * size
        log_likelihood[label] = {f: math.log((n + ALPHA) / denominator) for f, n in counter.items()}
        log_unseen[label] = math.log(ALPHA / denominator)
    labels = tuple(counts)
    return NaiveBayes(
        labels=labels,
        log_prior={c: math.log(docs[c] / total_docs) for c in labels},
        log_likelihood=log_likelihood,
        log_unseen=log_unseen,
    )
