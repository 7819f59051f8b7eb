"""A small multinomial naive Bayes text classifier, trained at load time on config examples.

Pure Python and deterministic: no model file, nothing downloaded. Features are lightly
stemmed words ("deploys", "deployed" and "deploying" share evidence with "deploy"), word
bigrams ("load balancer", "landing page") and, when the caller gives cues (a category's
keyword matcher), one `k:<label>` feature per label whose cue fires: the rules become
evidence the model weighs by what the examples show (a feature's keyword like "export" in
a bug report counts for less once bugs that mention exports are among the examples), not
an override. Laplace smoothing. Training pairs carry a weight so a category's hand-written
keywords can count more than one example title. The prediction comes with per-label log
scores so callers can add rule evidence before choosing. Chosen by 5-fold cross-validation
over benchmarks/categories.py's labelled set (docs/rules.md): character n-grams, the first
word as a feature, binary counts and smaller smoothing did not help there; a pure-Python
logistic regression was slower to train and no better.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise

__all__ = ["Cue", "NaiveBayes", "features", "stem", "train"]

#: How often a rule (a category's keywords) fires in a lower-case text.
Cue = Callable[[str], int]

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


def features(text: str, cues: Mapping[str, Cue] | None = None) -> list[str]:
    """Stemmed lower-case words, the bigrams of consecutive stemmed words, and `k:<label>`
    once for each label whose cue fires (once: a second hit adds little the words don't)."""
    lower = text.lower()
    ascii_text = unicodedata.normalize("NFKD", lower).encode("ascii", "ignore").decode()
    words = [stem(w) for w in _WORD.findall(ascii_text)]
    found = [f"w:{w}" for w in words] + [f"b:{a}_{b}" for a, b in pairwise(words)]
    return found + [f"k:{label}" for label, hits in (cues or {}).items() if hits(lower)]


@dataclass(frozen=True, slots=True)
class NaiveBayes:
    """Per-class feature log likelihoods (uniform priors: categories are not sized alike)."""

    labels: tuple[str, ...]
    log_likelihood: Mapping[str, Mapping[str, float]]
    log_unseen: Mapping[str, float]
    vocabulary: frozenset[str]
    cues: Mapping[str, Cue]

    def scores(self, text: str) -> dict[str, float]:
        """Log score per label; empty when the text shares no feature with the training set."""
        feats = [f for f in features(text, self.cues) if f in self.vocabulary]
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


def train(
    examples: Iterable[tuple[str, str, float]], cues: Mapping[str, Cue] | None = None
) -> NaiveBayes:
    """Fit on (label, text, weight) triples; `cues` (label -> keyword matcher) add their
    `k:<label>` features to training and prediction alike."""
    cues = dict(cues or {})
    counts: dict[str, dict[str, float]] = {}
    for label, text, weight in examples:
        counter = counts.setdefault(label, {})
        for feature in features(text, cues):
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
        cues=cues,
    )
