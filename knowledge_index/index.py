"""The in-memory knowledge index: entries, dense and lexical indexes, confidence models."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from knowledge_index.calibration import Calibrator, Ranker, fit_calibrators
from knowledge_index.dense import DenseIndex
from knowledge_index.encoders import Encoder, Vectors
from knowledge_index.fusion import (
    COLUMN,
    MODES,
    Mode,
    candidate_features,
    whitening_transform,
    with_fused,
)
from knowledge_index.hits import Hit
from knowledge_index.lexical import LexicalIndex
from knowledge_index.sources import KnowledgeEntry
from knowledge_index.text import Tokenizer

CANDIDATES = 20
"""Entries taken from each of the dense and lexical rankings before fusion."""

NEIGHBOURS = 4 * CANDIDATES
"""Nearest question rows fetched from FAISS per query."""

KNN_TEMPERATURE = 0.05
"""Softmax temperature of the nearest-row vote (`knn_share`)."""

TRAINING_TOP = 10
"""Candidates per calibration query used as training rows."""

UNANSWERABLE_SHARE = 0.25
"""Share of calibration queries that leave a whole entry out (simulated unanswerable)."""


@dataclass(frozen=True)
class _Candidates:
    entries: NDArray[np.int64]
    evidence: NDArray[np.float64]
    cosines: NDArray[np.float64]
    bm25: NDArray[np.float64]
    dense_rows: NDArray[np.int64]
    lexical_rows: NDArray[np.int64]


def _cosine(a: NDArray[np.float32], b: NDArray[np.float32] | None) -> float:
    norm = float(np.linalg.norm(a))
    return float(a @ b) / norm if norm > 0 and b is not None else 0.0


def _progress(items: Iterable[Any], enabled: bool, description: str, total: int) -> Iterable[Any]:
    if not enabled:
        return items
    from tqdm.auto import tqdm

    bar: Iterable[Any] = tqdm(items, desc=description, total=total, leave=False)
    return bar


class KnowledgeIndex:
    """Searchable knowledge base held in memory. Build with `KnowledgeIndex.build`.

    Every question and alternative question is a row of the dense and lexical indexes;
    results are per entry (the best of its rows).

    Args:
        entries: The entries; row ranges follow their order.
        vectors: (rows, d) unit vectors of every question row.
        dense: FAISS index over `vectors`.
        lexical: BM25 index over the tokenised question rows.
        ranker: The score fusion of the hybrid mode.
        calibrators: One confidence model per mode.
        encoder: Encodes queries (must be the model that made `vectors`).
        tokenizer: Tokenises queries like the indexed rows.
        info: Build facts kept in the manifest.
        whitening: The (d, d) whitening matrix; computed from `vectors` when None.
    """

    def __init__(
        self,
        entries: Sequence[KnowledgeEntry],
        vectors: Vectors,
        dense: DenseIndex,
        lexical: LexicalIndex,
        ranker: Ranker,
        calibrators: dict[Mode, Calibrator],
        encoder: Encoder,
        tokenizer: Tokenizer,
        info: dict[str, Any] | None = None,
        whitening: NDArray[np.float32] | None = None,
    ) -> None:
        self.entries = list(entries)
        self.questions = [q for entry in self.entries for q in entry.questions]
        counts = np.array([len(entry.questions) for entry in self.entries], dtype=np.int64)
        self.offsets = np.zeros(len(self.entries) + 1, dtype=np.int64)
        self.offsets[1:] = np.cumsum(counts)
        self.row_entry = np.repeat(np.arange(len(self.entries), dtype=np.int64), counts)
        self.vectors = vectors
        self.entry_sums = np.add.reduceat(vectors, self.offsets[:-1], axis=0)
        self.whitening = (
            whitening if whitening is not None else whitening_transform(vectors, self.offsets)
        )
        self.whitened_sums = self.entry_sums @ self.whitening.T
        self.dense = dense
        self.lexical = lexical
        self.ranker = ranker
        self.calibrators = {
            mode: calibrators.get(mode) or Calibrator.default(mode) for mode in MODES
        }
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.info = dict(info or {})
        self.entry_index = {entry.id: i for i, entry in enumerate(self.entries)}

    @classmethod
    def build(
        cls,
        entries: Sequence[KnowledgeEntry],
        encoder: Encoder,
        tokenizer: Tokenizer,
        *,
        exact_limit: int = 20_000,
        calibration_queries: int = 3_000,
        extra_queries: Sequence[tuple[str, str | None]] = (),
        progress: bool = False,
        seed: int = 0,
    ) -> KnowledgeIndex:
        """Encodes, indexes and calibrates entries.

        The confidence models are fitted on queries derived from the KB itself: each sampled
        alternative question is searched with its own row left out (answerable), and each
        sampled entry is searched with all its rows left out (unanswerable).

        Args:
            entries: Validated entries with unique ids.
            encoder: The embedding model.
            tokenizer: The jieba tokenizer.
            exact_limit: Largest row count searched exactly (HNSW above).
            calibration_queries: Most leave-out queries for fitting the confidence models.
            extra_queries: More labelled `(query, expected_id or None)` calibration queries,
                e.g. a dev split or known out-of-scope questions (never a test split).
            progress: Show tqdm progress bars on stderr.
            seed: Seed of the calibration sample.

        Returns:
            The ready index.
        """
        started = time.perf_counter()
        questions = [q for entry in entries for q in entry.questions]
        vectors = encoder.encode(questions, progress=progress)
        tokens = [
            tokenizer.tokenize(q)
            for q in _progress(questions, progress, "tokenising", len(questions))
        ]
        dense = DenseIndex.build(vectors, exact_limit=exact_limit)
        lexical = LexicalIndex.build(tokens)
        index = cls(entries, vectors, dense, lexical, Ranker.default(), {}, encoder, tokenizer)
        index._fit(tokens, calibration_queries, extra_queries, progress=progress, seed=seed)
        index.info = {
            "model": encoder.name,
            "dimension": int(vectors.shape[1]),
            "index_kind": dense.kind,
            "entries": len(index.entries),
            "rows": len(questions),
            "build_seconds": round(time.perf_counter() - started, 3),
            "ranker": index.ranker.to_dict(),
            "calibration": {m: c.to_dict() for m, c in index.calibrators.items()},
        }
        return index

    def search(self, query: str, k: int = 5, mode: Mode = "hybrid") -> list[Hit]:
        """The k best entries for a query, best first.

        Args:
            query: Customer text.
            k: Most hits returned.
            mode: `hybrid` (fused, default), `dense` or `lexical`.

        Returns:
            Hits with a calibrated confidence each.
        """
        vector, neighbours = None, None
        if mode != "lexical":
            vector = self.encoder.encode([query])[0]
            distances, ids = self._dense_neighbours(vector[None, :])
            neighbours = (distances[0], ids[0])
        tokens = self.tokenizer.tokenize(query) if mode != "dense" else []
        candidates = self._candidates(vector, neighbours, tokens, mode)
        features = with_fused(candidates.evidence, self.ranker.scores(candidates.evidence))
        order, scores, confidences = self._rank(candidates, features, mode)
        hits: list[Hit] = []
        for position in order[:k]:
            entry = self.entries[int(candidates.entries[position])]
            row = (
                candidates.lexical_rows[position]
                if mode == "lexical" or candidates.dense_rows[position] < 0
                else candidates.dense_rows[position]
            )
            hits.append(
                Hit(
                    entry_id=entry.id,
                    score=float(scores[position]),
                    confidence=float(confidences[position]),
                    question=self.questions[int(row)] if row >= 0 else entry.question,
                    answer=entry.answer,
                    link=entry.link,
                    topic=entry.topic,
                    language=entry.language,
                    dense_score=float(candidates.cosines[position]),
                    lexical_score=float(candidates.bm25[position]),
                )
            )
        return hits

    def _rank(
        self, candidates: _Candidates, features: NDArray[np.float64], mode: Mode
    ) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
        scores = _mode_scores(candidates, features, mode)
        order = np.argsort(-scores, kind="stable")
        if mode == "lexical":
            order = order[candidates.bm25[order] > 0]
        return order, scores, self.calibrators[mode].confidence(features)

    def _dense_neighbours(
        self, vectors: NDArray[np.float32], extra: int = 0
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Nearest question rows of query vectors (batched), `extra` more for left-out rows."""
        return self.dense.search(vectors, NEIGHBOURS + extra)

    def _candidates(
        self,
        vector: NDArray[np.float32] | None,
        neighbours: tuple[NDArray[np.float32], NDArray[np.int64]] | None,
        tokens: Sequence[str],
        mode: Mode,
        excluded: tuple[int, int] = (0, 0),
    ) -> _Candidates:
        """Pools the top entries of the dense and lexical rankings and computes features.

        Args:
            vector: The query vector (None in lexical mode).
            neighbours: Its dense neighbours, one row of `_dense_neighbours`.
            tokens: The query tokens (ignored in dense mode).
            mode: The ranking mode.
            excluded: A `[start, stop)` range of question rows treated as absent (calibration).
        """
        lo, hi = excluded
        pools: list[NDArray[np.int64]] = []
        use_dense = vector is not None and neighbours is not None and mode != "lexical"
        share = np.zeros(len(self.entries))
        if use_dense and neighbours is not None:
            scores, ids = neighbours
            keep = (ids >= 0) & ((ids < lo) | (ids >= hi))
            scores, rows = scores[keep][:NEIGHBOURS], ids[keep][:NEIGHBOURS]
            found = self.row_entry[rows]
            _, first = np.unique(found, return_index=True)
            pools.append(found[np.sort(first)][:CANDIDATES])
            if len(scores):
                weights = np.exp((scores.astype(np.float64) - scores[0]) / KNN_TEMPERATURE)
                np.add.at(share, found, weights / weights.sum())
        row_bm25 = np.zeros(len(self.questions), dtype=np.float32)
        bound, coverage = 1.0, 0.0
        if mode != "dense" and tokens:
            row_bm25 = self.lexical.scores(tokens)
            row_bm25[lo:hi] = 0.0
            bound = self.lexical.upper_bound(tokens)
            coverage = self.lexical.terms(tokens)[1]
            entry_bm25 = np.maximum.reduceat(row_bm25, self.offsets[:-1])
            count = min(CANDIDATES, len(entry_bm25))
            top = np.argpartition(-entry_bm25, count - 1)[:count]
            pools.append(top[entry_bm25[top] > 0].astype(np.int64))
        entries = np.unique(np.concatenate(pools)) if pools else np.zeros(0, dtype=np.int64)
        n = len(entries)
        cosines, centroids, whitened, bm25 = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
        query_white = None
        if use_dense and vector is not None:
            query_white = self.whitening @ vector
            query_white /= max(float(np.linalg.norm(query_white)), 1e-12)
        dense_rows = np.full(n, -1, dtype=np.int64)
        lexical_rows = np.full(n, -1, dtype=np.int64)
        for i, entry in enumerate(entries):
            start, stop = int(self.offsets[entry]), int(self.offsets[entry + 1])
            if use_dense and vector is not None:
                sims = self.vectors[start:stop] @ vector
                total, total_white = self.entry_sums[entry], self.whitened_sums[entry]
                if lo < stop and hi > start:
                    a, b = max(lo, start), min(hi, stop)
                    sims[a - start : b - start] = -np.inf
                    left_out = self.vectors[a:b].sum(axis=0)
                    total = total - left_out
                    total_white = total_white - self.whitening @ left_out
                best = int(np.argmax(sims))
                cosines[i], dense_rows[i] = float(sims[best]), start + best
                centroids[i] = _cosine(total, vector)
                whitened[i] = _cosine(total_white, query_white)
            segment = row_bm25[start:stop]
            best = int(np.argmax(segment))
            bm25[i], lexical_rows[i] = float(segment[best]), start + best
        evidence = candidate_features(
            cosines, centroids, whitened, share[entries], bm25, bound, coverage
        )
        return _Candidates(entries, evidence, cosines, bm25, dense_rows, lexical_rows)

    def _fit(
        self,
        tokens: Sequence[Sequence[str]],
        budget: int,
        extra_queries: Sequence[tuple[str, str | None]],
        *,
        progress: bool,
        seed: int,
    ) -> None:
        """Fits the ranker, then one calibrator per mode, on leave-out and extra queries."""
        samples = self._calibration_samples(tokens, budget, extra_queries, progress, seed)
        if not samples:
            return
        widest = max(stop - start for _, _, _, (start, stop) in samples)
        all_scores, all_ids = self._dense_neighbours(np.stack([s[0] for s in samples]), widest)
        pooled: list[tuple[Mode, _Candidates, int]] = []
        for number, (vector, query_tokens, expected, excluded) in enumerate(
            _progress(samples, progress, "calibrating", len(samples))
        ):
            neighbours = (all_scores[number], all_ids[number])
            for mode in MODES:
                candidates = self._candidates(vector, neighbours, query_tokens, mode, excluded)
                if len(candidates.entries):
                    pooled.append((mode, candidates, expected))
        groups = [
            (candidates.evidence, int(np.flatnonzero(candidates.entries == expected)[0]))
            for mode, candidates, expected in pooled
            if mode == "hybrid" and expected in candidates.entries
        ]
        self.ranker = Ranker.fit(groups)
        rows = []
        for mode, candidates, expected in pooled:
            features = with_fused(candidates.evidence, self.ranker.scores(candidates.evidence))
            top = np.argsort(-_mode_scores(candidates, features, mode), kind="stable")
            top = top[:TRAINING_TOP]
            rows.append((mode, features[top], candidates.entries[top] == expected))
        fitted = fit_calibrators(rows)
        self.calibrators = {mode: fitted.get(mode) or Calibrator.default(mode) for mode in MODES}

    def _calibration_samples(
        self,
        tokens: Sequence[Sequence[str]],
        budget: int,
        extra_queries: Sequence[tuple[str, str | None]],
        progress: bool,
        seed: int,
    ) -> list[tuple[NDArray[np.float32], Sequence[str], int, tuple[int, int]]]:
        """(vector, tokens, expected entry or -1, left-out row range) per calibration query."""
        rng = np.random.default_rng(seed)
        counts = np.diff(self.offsets)
        answerable_rows = np.flatnonzero(counts[self.row_entry] >= 2)
        n_unanswerable = min(int(budget * UNANSWERABLE_SHARE), len(self.entries))
        if len(self.entries) < 3:
            n_unanswerable = 0
        n_answerable = min(budget - n_unanswerable, len(answerable_rows))
        picked_rows = rng.choice(answerable_rows, size=n_answerable, replace=False)
        left_out = rng.choice(len(self.entries), size=n_unanswerable, replace=False)
        samples: list[tuple[NDArray[np.float32], Sequence[str], int, tuple[int, int]]] = []
        for row in picked_rows:
            entry = int(self.row_entry[row])
            samples.append((self.vectors[row], tokens[row], entry, (int(row), int(row) + 1)))
        for entry in left_out:
            start, stop = int(self.offsets[entry]), int(self.offsets[entry + 1])
            row = int(rng.integers(start, stop))
            samples.append((self.vectors[row], tokens[row], -1, (start, stop)))
        if extra_queries:
            texts = [text for text, _ in extra_queries]
            vectors = self.encoder.encode(texts, progress=progress)
            for (text, expected), vector in zip(extra_queries, vectors, strict=True):
                if expected is not None and expected not in self.entry_index:
                    raise ValueError(f"calibration query expects unknown entry {expected!r}")
                target = self.entry_index[expected] if expected is not None else -1
                samples.append((vector, self.tokenizer.tokenize(text), target, (0, 0)))
        return samples


def _mode_scores(
    candidates: _Candidates, features: NDArray[np.float64], mode: Mode
) -> NDArray[np.float64]:
    """The ranking key of a mode: fused score, cosine or BM25."""
    if mode == "hybrid":
        return features[:, COLUMN["fused"]]
    return candidates.cosines if mode == "dense" else candidates.bm25
