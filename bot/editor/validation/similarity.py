"""Pairs of sentence vectors that are nearly the same (cosine), in different groups."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray


def _unit(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    unit: NDArray[np.float32] = (vectors / norms).astype(np.float32)
    return unit


def similar_pairs(
    vectors: NDArray[np.float32],
    groups: Sequence[int],
    threshold: float,
    *,
    same: Sequence[object] | None = None,
    block: int = 1024,
) -> list[tuple[int, int, float]]:
    """Pairs `(i, j, cosine)`, i < j, at or above `threshold` whose `groups` differ.

    Rows are normalised here. With `same`, only pairs whose `same` values are equal count
    (e.g. the same language).
    """
    unit = _unit(np.asarray(vectors, dtype=np.float32))
    group = np.asarray(groups)
    other = np.asarray(same) if same is not None else None
    pairs: list[tuple[int, int, float]] = []
    for begin in range(0, len(unit), block):
        scores = unit[begin : begin + block] @ unit.T
        rows = np.arange(begin, begin + len(scores))[:, None]
        mask = (scores >= threshold) & (np.arange(len(unit))[None, :] > rows)
        mask &= group[begin : begin + block, None] != group[None, :]
        if other is not None:
            mask &= other[begin : begin + block, None] == other[None, :]
        for i, j in zip(*np.nonzero(mask), strict=True):
            pairs.append((begin + int(i), int(j), float(scores[i, j])))
    return pairs
