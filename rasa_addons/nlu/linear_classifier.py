"""A linear intent classifier over the pipeline's sentence features (sparse n-grams + USE).

One linear SVM per intent (scikit-learn's LinearSVC) on the L2-normalised sparse sentence
features of the count featurizers, next to the dense USE sentence vector scaled by
`dense_weight`. It trains in seconds where DIET takes many minutes on large datasets, and on
held-out data it is the more accurate of the two (README, "NLU benchmarks").

The top confidence is sigmoid(2 * temperature * (best score - `out_of_scope_score`)): 0.5 at
that score, less below it, so a message unlike every intent gets a low confidence and Rasa's
FallbackClassifier (threshold 0.5) turns it into `nlu_fallback`, out of scope. The other
intents keep their softmax proportions below the top one. The default -0.55 was chosen on
CLINC150's validation split: out-of-scope recall above 60 % for the least in-scope loss.
The model is persisted as plain numpy arrays, no pickle.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import scipy.sparse
from numpy.typing import NDArray
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.featurizers.featurizer import Featurizer
from rasa.shared.nlu.constants import (
    FEATURE_TYPE_SENTENCE,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "weights.npz"
LABELS_FILE = "labels.json"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class LinearIntentClassifier(IntentClassifier, GraphComponent):
    """Classifies intents with a linear SVM on sparse and dense sentence features."""

    @classmethod
    def required_components(cls) -> list[type]:
        """Featurizers must run first."""
        return [Featurizer]

    @staticmethod
    def required_packages() -> list[str]:
        """scikit-learn trains the SVM."""
        return ["sklearn"]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Regularisation, the dense vector's weight, the confidence scale, the ranking size."""
        return {
            "C": 0.5,
            "tf_idf": True,
            "dense_weight": 1.5,
            "temperature": 5.0,
            "out_of_scope_score": -0.55,
            "max_iter": 2000,
            "ranking_length": 10,
        }

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        """Checks the numeric options."""
        for key in ("C", "temperature", "max_iter", "ranking_length"):
            if float(config[key]) <= 0:
                raise ValueError(f"{cls.__name__}: '{key}' must be positive")
        if float(config["dense_weight"]) < 0:
            raise ValueError(f"{cls.__name__}: 'dense_weight' must not be negative")

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        labels: list[str] | None = None,
        weights: NDArray[np.float32] | None = None,
        bias: NDArray[np.float32] | None = None,
        idf: NDArray[np.float32] | None = None,
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        self.validate_config(self._config)
        self._model_storage = model_storage
        self._resource = resource
        self.labels = labels or []
        self._weights = weights
        self._bias = bias
        self._idf = idf

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> LinearIntentClassifier:
        """An untrained classifier."""
        return cls(config, model_storage, resource)

    @staticmethod
    def _sparse_blocks(
        message: Message,
    ) -> list[tuple[NDArray[np.int_], NDArray[np.float32], int]]:
        """(columns, counts, width) of each featurizer's sentence-level sparse features."""
        blocks = []
        for feature in message.features:
            sentence = feature.attribute == TEXT and feature.type == FEATURE_TYPE_SENTENCE
            if sentence and feature.is_sparse():
                sparse: Any = feature.features  # a scipy matrix (scipy has no types)
                matrix = sparse.tocoo()
                blocks.append((matrix.col, matrix.data.astype(np.float32), matrix.shape[1]))
        return blocks

    def _row(self, message: Message) -> tuple[NDArray[np.int_], NDArray[np.float32]]:
        """(columns, values) of one message's features.

        Each featurizer's counts, log-scaled times idf and L2-normalised, then the dense
        sentence vector times `dense_weight`.
        """
        columns, values, offset = [], [], 0
        for block_columns, counts, width in self._sparse_blocks(message):
            block_columns = block_columns + offset
            if self._idf is not None and offset + width <= self._idf.shape[0]:
                counts = np.log1p(counts) * self._idf[block_columns]
            norm = float(np.linalg.norm(counts))
            columns.append(block_columns)
            values.append(counts / norm if norm else counts)
            offset += width
        dense = message.get_dense_features(TEXT)[1]
        if dense is not None:
            vector = np.asarray(dense.features, dtype=np.float32).reshape(-1)
            columns.append(np.arange(offset, offset + vector.shape[0]))
            values.append(vector * float(self._config["dense_weight"]))
        if not columns:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        return np.concatenate(columns), np.concatenate(values)

    def _matrix(self, messages: list[Message]) -> scipy.sparse.csr_matrix:
        """The training matrix: one row per message."""
        rows = [self._row(message) for message in messages]
        width = max((int(columns.max()) + 1 for columns, _ in rows if columns.size), default=0)
        return scipy.sparse.csr_matrix(
            (
                np.concatenate([values for _, values in rows]),
                np.concatenate([columns for columns, _ in rows]),
                np.cumsum([0] + [columns.size for columns, _ in rows]),
            ),
            shape=(len(rows), width),
            dtype=np.float32,
        )

    def train(self, training_data: TrainingData) -> Resource:
        """Fits one SVM per intent (one-vs-rest) and persists the weights."""
        from sklearn.svm import LinearSVC

        examples = [m for m in training_data.intent_examples if m.get(TEXT) and m.get(INTENT)]
        intents = sorted({m.get(INTENT) for m in examples})
        if len(intents) < 2:
            logger.warning("LinearIntentClassifier needs two intents; it stays untrained.")
            return self._resource
        if self._config["tf_idf"]:
            self._idf = self._inverse_document_frequency(examples)
        svm = LinearSVC(
            C=float(self._config["C"]), max_iter=int(self._config["max_iter"]), random_state=42
        )
        svm.fit(self._matrix(examples), [m.get(INTENT) for m in examples])
        self.labels = [str(label) for label in svm.classes_]
        self._weights = np.asarray(svm.coef_, dtype=np.float32)
        self._bias = np.asarray(svm.intercept_, dtype=np.float32)
        if len(self.labels) == 2:  # LinearSVC keeps one row for two classes
            self._weights = np.vstack([-self._weights, self._weights])
            self._bias = np.concatenate([-self._bias, self._bias])
        self.persist()
        return self._resource

    @classmethod
    def _inverse_document_frequency(cls, examples: list[Message]) -> NDArray[np.float32] | None:
        """Smoothed idf of every sparse column, as scikit-learn's TfidfTransformer computes it."""
        rows = [cls._sparse_blocks(m) for m in examples]
        widths = {tuple(width for _, _, width in blocks) for blocks in rows}
        if len(widths) != 1 or not rows[0]:
            logger.warning("LinearIntentClassifier: uneven sparse features, no idf weighting.")
            return None
        offsets = np.cumsum([0, *next(iter(widths))])
        columns = [c + offsets[i] for blocks in rows for i, (c, _, _) in enumerate(blocks)]
        frequency = np.bincount(np.concatenate(columns), minlength=int(offsets[-1]))
        return np.asarray(np.log((1 + len(rows)) / (1 + frequency)) + 1, dtype=np.float32)

    def confidences(self, messages: list[Message]) -> NDArray[np.float32]:
        """Confidence of every intent (columns in `labels` order) for every message."""
        assert self._weights is not None and self._bias is not None
        scores = np.tile(self._bias, (len(messages), 1))
        for index, message in enumerate(messages):
            columns, values = self._row(message)
            known = columns < self._weights.shape[1]  # features the model never saw count 0
            scores[index] += self._weights[:, columns[known]] @ values[known]
        scaled = scores * float(self._config["temperature"])
        exp = np.exp(scaled - scaled.max(axis=1, keepdims=True))
        probabilities = exp / exp.sum(axis=1, keepdims=True)
        # The top confidence says how far the best score is above `out_of_scope_score`
        # (0.5 there); the others keep their softmax proportions below it.
        distance = scores.max(axis=1) - float(self._config["out_of_scope_score"])
        top = 1.0 / (1.0 + np.exp(-2.0 * float(self._config["temperature"]) * distance))
        scale = top / probabilities.max(axis=1)
        return np.asarray(probabilities * scale[:, None])

    def process(self, messages: list[Message]) -> list[Message]:
        """Sets each message's intent and intent ranking.

        Like Rasa's own classifiers, a message it cannot classify (no text, or no trained
        model) gets the intent None with confidence 0 and an empty ranking.
        """
        for message in messages:
            message.set(INTENT, {INTENT_NAME_KEY: None, PREDICTED_CONFIDENCE_KEY: 0.0}, True)
            message.set(INTENT_RANKING_KEY, [], add_to_output=True)
        readable = [m for m in messages if m.get(TEXT)] if self._weights is not None else []
        if not readable:
            return messages
        length = int(self._config["ranking_length"])
        for message, row in zip(readable, self.confidences(readable), strict=True):
            order = np.argsort(-row)[:length]
            ranking = [
                {INTENT_NAME_KEY: self.labels[i], PREDICTED_CONFIDENCE_KEY: float(row[i])}
                for i in order
            ]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages

    def persist(self) -> None:
        """Writes the weights (numpy) and the intent names (JSON)."""
        assert self._weights is not None and self._bias is not None
        with self._model_storage.write_to(self._resource) as directory:
            arrays = {"weights": self._weights, "bias": self._bias}
            if self._idf is not None:
                arrays["idf"] = self._idf
            np.savez(directory / WEIGHTS_FILE, **arrays)
            (directory / LABELS_FILE).write_text(json.dumps(self.labels, ensure_ascii=False))

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> LinearIntentClassifier:
        """Loads a trained classifier; an untrained one if nothing was persisted."""
        try:
            with model_storage.read_from(resource) as directory:
                arrays = np.load(directory / WEIGHTS_FILE)
                labels = json.loads((directory / LABELS_FILE).read_text())
                idf = arrays["idf"] if "idf" in arrays.files else None
                return cls(
                    config, model_storage, resource, labels, arrays["weights"], arrays["bias"], idf
                )
        except (ValueError, FileNotFoundError):
            logger.debug("LinearIntentClassifier: nothing persisted, untrained.")
            return cls(config, model_storage, resource)
