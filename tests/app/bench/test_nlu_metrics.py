"""nlu_bench.metrics: accuracy, macro-F1 by hand, out-of-scope handling, percentiles."""

from __future__ import annotations

import pytest

from nlu_bench.metrics import accuracy, macro_f1, percentile, scores


def test_accuracy() -> None:
    assert accuracy(["a", "b", "c", "a"], ["a", "b", "a", "a"]) == 0.75


def test_macro_f1_by_hand() -> None:
    gold = ["a", "a", "a", "b", "b", "c"]
    predicted = ["a", "a", "b", "b", "c", "c"]
    # a: precision 2/2, recall 2/3 -> F1 0.8
    # b: precision 1/2, recall 1/2 -> F1 0.5
    # c: precision 1/2, recall 1/1 -> F1 2/3
    assert macro_f1(gold, predicted) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_a_prediction_outside_the_gold_intents_is_a_miss_not_a_class() -> None:
    # "z" never occurs in gold: it lowers a's recall, but is not averaged in.
    assert macro_f1(["a", "a", "b"], ["a", "z", "b"]) == pytest.approx((2 / 3 + 1.0) / 2)


def test_an_intent_never_hit_scores_zero() -> None:
    assert macro_f1(["a", "b"], ["a", "a"]) == pytest.approx((2 / 3 + 0.0) / 2)


def test_scores_without_out_of_scope_are_closed_set() -> None:
    assert scores(["a", "b"], ["a", "a"], "oos") == {
        "accuracy": 0.5,
        "macro_f1": pytest.approx(1 / 3),
    }


def test_scores_with_out_of_scope() -> None:
    gold = ["a", "a", "b", "oos", "oos", "oos", "oos"]
    predicted = ["a", "oos", "b", "oos", "a", "oos", "oos"]
    result = scores(gold, predicted, "oos")
    assert result["accuracy"] == pytest.approx(5 / 7)
    assert result["in_scope_accuracy"] == pytest.approx(2 / 3)  # a rejected "a" is a miss
    assert result["oos_recall"] == pytest.approx(3 / 4)


def test_scores_with_only_out_of_scope() -> None:
    result = scores(["oos", "oos"], ["oos", "a"], "oos")
    assert result["in_scope_accuracy"] == 0.0
    assert result["oos_recall"] == 0.5


def test_empty_or_unequal_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="equal length"):
        accuracy([], [])
    with pytest.raises(ValueError, match="equal length"):
        macro_f1(["a"], ["a", "b"])


def test_percentile() -> None:
    assert percentile([], 95) == 0.0
    assert percentile([7.0], 95) == 7.0
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
