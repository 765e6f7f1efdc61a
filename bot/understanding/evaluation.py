"""How well the readers generalise: k-fold cross-validation on the examples file.

Every block is split into folds by label; the readers are trained on the rest (the same
features and model as `Reader`) and scored on the held-out fold: accuracy, and precision and
recall per label. `kefu eval readers` prints it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.understanding.examples import UnderstandingExamples
from bot.understanding.reader import Reader, without_codes
from knowledge_index import Encoder


@dataclass(frozen=True)
class BlockScores:
    """The cross-validated scores of one block."""

    block: str
    examples: int
    accuracy: float
    precision: dict[str, float]
    recall: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "examples": self.examples,
            "accuracy": round(self.accuracy, 4),
            "precision": {k: round(v, 4) for k, v in self.precision.items()},
            "recall": {k: round(v, 4) for k, v in self.recall.items()},
        }


def cross_validate(
    encoder: Encoder, examples: UnderstandingExamples, folds: int = 5, seed: int = 0
) -> list[BlockScores]:
    """Cross-validated scores of every block (stratified folds, fixed seed)."""
    from sklearn.model_selection import StratifiedKFold

    blocks = examples.blocks()
    texts = sorted({text for labels in blocks.values() for e in labels.values() for text in e})
    vectors = np.asarray(encoder.encode([without_codes(t) for t in texts]), np.float32)
    row_of = {text: row for row, text in enumerate(texts)}
    scores = []
    for block, labels in blocks.items():
        items = [(text, label) for label, values in labels.items() for text in values]
        targets = np.array([label for _, label in items])
        predicted = np.empty(len(items), dtype=object)
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
        for train, test in splitter.split(np.zeros(len(items)), targets):
            model = Reader.fit_block(
                [items[i][0] for i in train],
                vectors[[row_of[items[i][0]] for i in train]],
                list(targets[train]),
                list(labels),
            )
            chosen = model.predict(
                [items[i][0] for i in test], vectors[[row_of[items[i][0]] for i in test]]
            )
            predicted[test] = chosen
        scores.append(_scores(block, list(labels), targets, predicted))
    return scores


def _scores(block: str, labels: list[str], targets: Any, predicted: Any) -> BlockScores:
    pairs = Counter(zip(targets, predicted, strict=True))
    precision, recall = {}, {}
    for label in labels:
        tp = pairs[(label, label)]
        predicted_as = sum(n for (_, p), n in pairs.items() if p == label)
        actual = sum(n for (t, _), n in pairs.items() if t == label)
        precision[label] = tp / predicted_as if predicted_as else 0.0
        recall[label] = tp / actual if actual else 0.0
    accuracy = sum(pairs[(label, label)] for label in labels) / len(targets)
    return BlockScores(block, len(targets), accuracy, precision, recall)
