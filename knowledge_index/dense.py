"""Dense vector search with FAISS: exact below a size limit, HNSW above it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from knowledge_index.encoders import Vectors

IndexKind = Literal["flat", "hnsw"]

HNSW_NEIGHBOURS = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128


def _faiss() -> Any:
    """The faiss module, single-threaded: one query is fastest without OpenMP on 2 busy cores."""
    import faiss

    if faiss.omp_get_max_threads() != 1:
        faiss.omp_set_num_threads(1)
    return faiss


class DenseIndex:
    """Inner-product search over unit vectors (so scores are cosines).

    Build with `DenseIndex.build`; `IndexFlatIP` is exact, `IndexHNSWFlat` approximate.

    Args:
        index: A FAISS index holding the vectors.
        kind: `flat` or `hnsw`.
    """

    def __init__(self, index: Any, kind: IndexKind) -> None:
        self.index = index
        self.kind: IndexKind = kind

    @classmethod
    def build(cls, vectors: Vectors, exact_limit: int = 20_000) -> DenseIndex:
        """Indexes unit vectors, exactly up to `exact_limit` vectors, with HNSW above.

        Args:
            vectors: (n, d) float32 unit rows.
            exact_limit: Largest n searched exactly.

        Returns:
            The index.
        """
        faiss = _faiss()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        dimension = vectors.shape[1]
        if len(vectors) <= exact_limit:
            index = faiss.IndexFlatIP(dimension)
            kind: IndexKind = "flat"
        else:
            index = faiss.IndexHNSWFlat(dimension, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            index.hnsw.efSearch = HNSW_EF_SEARCH
            kind = "hnsw"
        index.add(vectors)
        return cls(index, kind)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries: Vectors, k: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """The k nearest vectors of each query.

        Args:
            queries: (m, d) float32 unit rows.
            k: Neighbours per query (capped at the index size).

        Returns:
            Scores (m, k) in descending order and row ids (m, k); -1 pads missing neighbours.
        """
        k = max(1, min(k, len(self)))
        scores, ids = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores, ids

    def save(self, path: Path) -> None:
        """Writes the FAISS index to a file."""
        _faiss().write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path) -> DenseIndex:
        """Reads an index written by `save`."""
        faiss = _faiss()
        index = faiss.read_index(str(path))
        if isinstance(index, faiss.IndexHNSWFlat):
            index.hnsw.efSearch = HNSW_EF_SEARCH
            return cls(index, "hnsw")
        return cls(index, "flat")
