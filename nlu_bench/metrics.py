"""Scores of intent predictions: accuracy, macro-F1, in-scope accuracy, out-of-scope recall."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence


def accuracy(gold: Sequence[str], predicted: Sequence[str]) -> float:
    """Share of exact matches."""
    _check(gold, predicted)
    return sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold)


def macro_f1(gold: Sequence[str], predicted: Sequence[str]) -> float:
    """Unweighted mean of the F1 of every gold intent (a prediction outside them is a miss)."""
    _check(gold, predicted)
    true_positive: Counter[str] = Counter()
    for g, p in zip(gold, predicted, strict=True):
        if g == p:
            true_positive[g] += 1
    gold_count, predicted_count = Counter(gold), Counter(predicted)
    scores = []
    for intent in gold_count:
        hits = true_positive[intent]
        precision = hits / predicted_count[intent] if predicted_count[intent] else 0.0
        recall = hits / gold_count[intent]
        scores.append(2 * precision * recall / (precision + recall) if hits else 0.0)
    return sum(scores) / len(scores)


def scores(gold: Sequence[str], predicted: Sequence[str], oos_label: str) -> dict[str, float]:
    """Accuracy and macro-F1; in-scope accuracy and out-of-scope recall if `oos_label` occurs."""
    result = {"accuracy": accuracy(gold, predicted), "macro_f1": macro_f1(gold, predicted)}
    in_scope = [(g, p) for g, p in zip(gold, predicted, strict=True) if g != oos_label]
    out_of_scope = [p for g, p in zip(gold, predicted, strict=True) if g == oos_label]
    if out_of_scope:
        result["in_scope_accuracy"] = (
            sum(g == p for g, p in in_scope) / len(in_scope) if in_scope else 0.0
        )
        result["oos_recall"] = sum(p == oos_label for p in out_of_scope) / len(out_of_scope)
    return result


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100, linear interpolation); 0.0 for no values."""
    if not 0 <= q <= 100:
        raise ValueError("q must be between 0 and 100")
    if not values:
        return 0.0
    if q == 0 or len(values) == 1:
        return float(min(values))
    if q == 100:
        return float(max(values))
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _check(gold: Sequence[str], predicted: Sequence[str]) -> None:
    if not gold or len(gold) != len(predicted):
        raise ValueError("gold and predicted must be non-empty and of equal length")
