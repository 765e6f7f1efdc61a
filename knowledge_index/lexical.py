"""Okapi BM25 over jieba tokens, stored as a sparse document-term weight matrix."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

BM25_K1 = 1.2
BM25_B = 0.75


class LexicalIndex:
    """BM25 (Lucene's non-negative idf) over tokenised documents.

    Scoring a query touches only the postings of its terms, so it stays well under a
    millisecond for tens of thousands of short documents.

    Args:
        vocabulary: Term to column.
        idf: Inverse document frequency per column.
        indptr: CSC column pointers of the document-term weight matrix.
        doc_ids: CSC row (document) ids.
        weights: CSC BM25 weights `idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))`.
        n_documents: Number of documents (rows).
    """

    def __init__(
        self,
        vocabulary: dict[str, int],
        idf: NDArray[np.float32],
        indptr: NDArray[np.int64],
        doc_ids: NDArray[np.int32],
        weights: NDArray[np.float32],
        n_documents: int,
    ) -> None:
        self.vocabulary = vocabulary
        self.idf = idf
        self.indptr = indptr
        self.doc_ids = doc_ids
        self.weights = weights
        self.n_documents = n_documents
        self.max_idf = float(idf.max()) if len(idf) else 1.0

    @classmethod
    def build(
        cls, documents: Sequence[Sequence[str]], k1: float = BM25_K1, b: float = BM25_B
    ) -> LexicalIndex:
        """Indexes tokenised documents.

        Args:
            documents: One token list per document.
            k1: Term-frequency saturation.
            b: Length normalisation.

        Returns:
            The index.
        """
        vocabulary: dict[str, int] = {}
        postings: list[list[tuple[int, int]]] = []
        lengths = np.array([max(len(doc), 1) for doc in documents], dtype=np.float64)
        for doc_id, doc in enumerate(documents):
            for term, count in Counter(doc).items():
                column = vocabulary.setdefault(term, len(vocabulary))
                if column == len(postings):
                    postings.append([])
                postings[column].append((doc_id, count))
        n_docs = len(documents)
        average = float(lengths.mean()) if n_docs else 1.0
        idf = np.array(
            [math.log(1.0 + (n_docs - len(p) + 0.5) / (len(p) + 0.5)) for p in postings],
            dtype=np.float32,
        )
        indptr = np.zeros(len(postings) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(p) for p in postings])
        doc_ids = np.fromiter((d for p in postings for d, _ in p), dtype=np.int32)
        tf = np.fromiter((c for p in postings for _, c in p), dtype=np.float64)
        column_idf = np.repeat(idf.astype(np.float64), np.diff(indptr))
        norm = k1 * (1.0 - b + b * lengths[doc_ids] / average)
        weights = (column_idf * tf * (k1 + 1.0) / (tf + norm)).astype(np.float32)
        return cls(vocabulary, idf, indptr, doc_ids, weights, n_docs)

    def terms(self, tokens: Sequence[str]) -> tuple[list[int], float]:
        """The known distinct terms of a query and the share of its distinct tokens known."""
        distinct = list(dict.fromkeys(tokens))
        known = [self.vocabulary[t] for t in distinct if t in self.vocabulary]
        coverage = len(known) / len(distinct) if distinct else 0.0
        return known, coverage

    def scores(self, tokens: Sequence[str]) -> NDArray[np.float32]:
        """BM25 score of every document for a tokenised query (distinct terms count once)."""
        known, _ = self.terms(tokens)
        if not known:
            return np.zeros(self.n_documents, dtype=np.float32)
        slices = [slice(self.indptr[t], self.indptr[t + 1]) for t in known]
        rows = np.concatenate([self.doc_ids[s] for s in slices])
        values = np.concatenate([self.weights[s] for s in slices])
        return np.bincount(rows, weights=values, minlength=self.n_documents).astype(np.float32)

    def postings(self, tokens: Sequence[str]) -> list[tuple[float, NDArray[np.int32]]]:
        """(idf, documents containing it) of each known distinct term of a query."""
        known, _ = self.terms(tokens)
        return [
            (float(self.idf[t]), self.doc_ids[self.indptr[t] : self.indptr[t + 1]]) for t in known
        ]

    def upper_bound(self, tokens: Sequence[str]) -> float:
        """A normaliser: the sum of idf over distinct query tokens, unknown ones at max idf."""
        distinct = set(tokens)
        total = sum(
            float(self.idf[self.vocabulary[t]]) if t in self.vocabulary else self.max_idf
            for t in distinct
        )
        return total if total > 0 else 1.0

    def save(self, path: Path) -> None:
        """Writes the index as `<path>.npz` arrays plus `<path>.vocab.json`."""
        np.savez(
            path.with_suffix(".npz"),
            idf=self.idf,
            indptr=self.indptr,
            doc_ids=self.doc_ids,
            weights=self.weights,
            n_documents=np.array([self.n_documents]),
        )
        path.with_suffix(".vocab.json").write_text(
            json.dumps(self.vocabulary, ensure_ascii=False), encoding="utf-8"
        )

    @classmethod
    def load(cls, path: Path) -> LexicalIndex:
        """Reads an index written by `save`."""
        with np.load(path.with_suffix(".npz")) as arrays:
            return cls(
                json.loads(path.with_suffix(".vocab.json").read_text(encoding="utf-8")),
                arrays["idf"],
                arrays["indptr"],
                arrays["doc_ids"],
                arrays["weights"],
                int(arrays["n_documents"][0]),
            )
