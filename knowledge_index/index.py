"""The in-memory knowledge index: entries, dense and lexical indexes, confidence models."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from knowledge_index.calibration import Calibrator, Ranker
from knowledge_index.calibration import fit_calibrators as fit_calibrators_per_mode
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
from knowledge_index.shipped import shipped_calibrators
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


_Sample = tuple[NDArray[np.float32], Sequence[str], int, tuple[int, int]]
"""A calibration query: vector, tokens, expected entry (-1: none), left-out row range."""

CalibrationChoice = Literal["auto", "kb"] | Mapping[Mode, Calibrator]
"""How `KnowledgeIndex.build` gets its confidence models (see there)."""


@dataclass(frozen=True)
class _Candidates:
    entries: NDArray[np.int64]
    evidence: NDArray[np.float64]
    cosines: NDArray[np.float64]
    bm25: NDArray[np.float64]
    dense_rows: NDArray[np.int64]
    lexical_rows: NDArray[np.int64]


def _row_cosines(rows: NDArray[np.float64], unit: NDArray[Any]) -> NDArray[np.float64]:
    """Cosine of each row with a unit vector (0 for a zero row)."""
    norms = np.linalg.norm(rows, axis=1)
    dots = rows @ unit.astype(np.float64)
    cosines: NDArray[np.float64] = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    return cosines


def _segment_argmax(
    values: NDArray[np.float64], firsts: NDArray[np.int64], owner: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Index of the first maximum of each segment of `values` (segments start at `firsts`)."""
    if not len(firsts):
        return np.zeros(0, dtype=np.int64)
    maxima = np.maximum.reduceat(values, firsts)
    candidates = np.flatnonzero(values == maxima[owner])
    _, first = np.unique(owner[candidates], return_index=True)
    best: NDArray[np.int64] = candidates[first]
    return best


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
        self._language_masks: dict[str, NDArray[np.bool_]] = {}

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
        calibration: CalibrationChoice = "auto",
    ) -> KnowledgeIndex:
        """Encodes, indexes and calibrates entries.

        The ranker (the fusion of dense and lexical evidence) is fitted on queries derived
        from the KB itself: each sampled alternative question is searched with its own row
        left out (answerable), and each sampled entry is searched with all its rows left out
        (unanswerable). The confidence models are the ones shipped for the embedding model
        (`knowledge_index.shipped`, fitted on public data: they transfer to unseen KBs) when
        there are any; otherwise they are fitted on the same leave-out queries.

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
            calibration: `auto` (the shipped models of the encoder if any, else fitted on the
                KB), `kb` (always fitted on the KB) or explicit models per mode.

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
        chosen: Mapping[Mode, Calibrator] | None = None
        if calibration == "auto":
            chosen = shipped_calibrators(encoder.name)
        elif calibration != "kb":
            chosen = calibration
        index._fit(
            tokens,
            calibration_queries,
            extra_queries,
            progress=progress,
            seed=seed,
            fit_calibrators=chosen is None,
        )
        if chosen is not None:
            index.calibrators = {
                mode: chosen.get(mode) or index.calibrators[mode] for mode in MODES
            }
        index.info = {
            "model": encoder.name,
            "dimension": int(vectors.shape[1]),
            "index_kind": dense.kind,
            "entries": len(index.entries),
            "rows": len(questions),
            "build_seconds": round(time.perf_counter() - started, 3),
            "calibration_source": index.calibrators["hybrid"].source,
            "ranker": index.ranker.to_dict(),
            "calibration": {m: c.to_dict() for m, c in index.calibrators.items()},
        }
        return index

    def search(
        self, query: str, k: int = 5, mode: Mode = "hybrid", *, language: str | None = None
    ) -> list[Hit]:
        """The k best entries for a query, best first.

        Args:
            query: Customer text.
            k: Most hits returned.
            mode: `hybrid` (fused, default), `dense` or `lexical`.
            language: Only entries in this language compete (the bot answers in the
                customer's language): margins and confidences are computed among them, so
                an entry's translation does not halve its confidence. None: every entry.

        Returns:
            Hits with a calibrated confidence each.
        """
        allowed = self._language_mask(language)
        vector, neighbours = None, None
        if mode != "lexical":
            vector = self.encoder.encode([query])[0]
            extra = NEIGHBOURS if allowed is not None else 0
            distances, ids = self._dense_neighbours(vector[None, :], extra)
            neighbours = (distances[0], ids[0])
        tokens = self.tokenizer.tokenize(query) if mode != "dense" else []
        candidates = self._candidates(vector, neighbours, tokens, mode, allowed=allowed)
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

    def _language_mask(self, language: str | None) -> NDArray[np.bool_] | None:
        """Which entries are in `language` (None: no restriction)."""
        if language is None:
            return None
        mask = self._language_masks.get(language)
        if mask is None:
            mask = np.array([entry.language == language for entry in self.entries], dtype=bool)
            self._language_masks[language] = mask
        return mask

    def _candidates(
        self,
        vector: NDArray[np.float32] | None,
        neighbours: tuple[NDArray[np.float32], NDArray[np.int64]] | None,
        tokens: Sequence[str],
        mode: Mode,
        excluded: tuple[int, int] = (0, 0),
        allowed: NDArray[np.bool_] | None = None,
    ) -> _Candidates:
        """Pools the top entries of the dense and lexical rankings and computes features.

        Args:
            vector: The query vector (None in lexical mode).
            neighbours: Its dense neighbours, one row of `_dense_neighbours`.
            tokens: The query tokens (ignored in dense mode).
            mode: The ranking mode.
            excluded: A `[start, stop)` range of question rows treated as absent (calibration).
            allowed: Entries that may be candidates (None: all).
        """
        lo, hi = excluded
        pools: list[NDArray[np.int64]] = []
        use_dense = vector is not None and neighbours is not None and mode != "lexical"
        share = np.zeros(len(self.entries))
        if use_dense and neighbours is not None:
            scores, ids = neighbours
            keep = (ids >= 0) & ((ids < lo) | (ids >= hi))
            if allowed is not None:
                keep &= allowed[self.row_entry[np.maximum(ids, 0)]]
            scores, rows = scores[keep][:NEIGHBOURS], ids[keep][:NEIGHBOURS]
            found = self.row_entry[rows]
            _, first = np.unique(found, return_index=True)
            pools.append(found[np.sort(first)][:CANDIDATES])
            if len(scores):
                weights = np.exp((scores.astype(np.float64) - scores[0]) / KNN_TEMPERATURE)
                np.add.at(share, found, weights / weights.sum())
        row_bm25 = np.zeros(len(self.questions), dtype=np.float32)
        bound, coverage = 1.0, 0.0
        use_lexical = mode != "dense" and bool(tokens)
        if use_lexical:
            row_bm25 = self.lexical.scores(tokens)
            row_bm25[lo:hi] = 0.0
            if allowed is not None:
                row_bm25[~allowed[self.row_entry]] = 0.0
            bound = self.lexical.upper_bound(tokens)
            coverage = self.lexical.terms(tokens)[1]
            entry_bm25 = np.maximum.reduceat(row_bm25, self.offsets[:-1])
            count = min(CANDIDATES, len(entry_bm25))
            top = np.argpartition(-entry_bm25, count - 1)[:count]
            pools.append(top[entry_bm25[top] > 0].astype(np.int64))
        entries = np.unique(np.concatenate(pools)) if pools else np.zeros(0, dtype=np.int64)
        n = len(entries)
        matched = self._matched_idf(tokens, entries, excluded) if use_lexical else np.zeros(n)
        counts = self.offsets[entries + 1] - self.offsets[entries]
        firsts = np.zeros(n, dtype=np.int64)
        firsts[1:] = np.cumsum(counts)[:-1]
        owner = np.repeat(np.arange(n), counts)
        rows = np.repeat(self.offsets[entries] - firsts, counts) + np.arange(int(counts.sum()))
        cosines, centroids, whitened = np.zeros(n), np.zeros(n), np.zeros(n)
        dense_rows = np.full(n, -1, dtype=np.int64)
        if use_dense and vector is not None:
            sims = (self.vectors[rows] @ vector).astype(np.float64)
            totals = self.entry_sums[entries].astype(np.float64)
            totals_white = self.whitened_sums[entries].astype(np.float64)
            if hi > lo:
                sims[(rows >= lo) & (rows < hi)] = -np.inf
                touched = np.flatnonzero(
                    (self.offsets[entries] < hi) & (self.offsets[entries + 1] > lo)
                )
                for i in touched:
                    start, stop = int(self.offsets[entries[i]]), int(self.offsets[entries[i] + 1])
                    left_out = self.vectors[max(lo, start) : min(hi, stop)].sum(axis=0)
                    totals[i] -= left_out
                    totals_white[i] -= self.whitening @ left_out
            best = _segment_argmax(sims, firsts, owner)
            cosines, dense_rows = sims[best], rows[best]
            query_white = self.whitening @ vector
            query_white /= max(float(np.linalg.norm(query_white)), 1e-12)
            centroids = _row_cosines(totals, vector)
            whitened = _row_cosines(totals_white, query_white)
        segment_bm25 = row_bm25[rows].astype(np.float64)
        best = _segment_argmax(segment_bm25, firsts, owner)
        bm25, lexical_rows = segment_bm25[best], rows[best]
        questions = (self.offsets[entries + 1] - self.offsets[entries]).astype(np.float64)
        if hi > lo:
            starts, stops = self.offsets[entries], self.offsets[entries + 1]
            questions -= np.clip(np.minimum(stops, hi) - np.maximum(starts, lo), 0, None)
        evidence = candidate_features(
            cosines,
            centroids,
            whitened,
            share[entries],
            bm25,
            bound,
            coverage,
            matched,
            questions,
        )
        return _Candidates(entries, evidence, cosines, bm25, dense_rows, lexical_rows)

    def _matched_idf(
        self, tokens: Sequence[str], entries: NDArray[np.int64], excluded: tuple[int, int]
    ) -> NDArray[np.float64]:
        """Per candidate entry, the idf sum of the query's distinct words in its questions."""
        lo, hi = excluded
        position = np.full(len(self.entries), -1, dtype=np.int64)
        position[entries] = np.arange(len(entries))
        matched = np.zeros(len(entries))
        for idf, documents in self.lexical.postings(tokens):
            if hi > lo:
                documents = documents[(documents < lo) | (documents >= hi)]
            found = position[self.row_entry[documents]]
            present = np.zeros(len(entries), dtype=bool)
            present[found[found >= 0]] = True
            matched[present] += idf
        return matched

    def _fit(
        self,
        tokens: Sequence[Sequence[str]],
        budget: int,
        extra_queries: Sequence[tuple[str, str | None]],
        *,
        progress: bool,
        seed: int,
        fit_calibrators: bool = True,
    ) -> None:
        """Fits the ranker, then (if asked) one calibrator per mode, on leave-out queries."""
        samples = self._calibration_samples(tokens, budget, extra_queries, progress, seed)
        if not samples:
            return
        pooled = self._pool(samples, MODES if fit_calibrators else ("hybrid",), progress)
        groups = [
            (candidates.evidence, int(np.flatnonzero(candidates.entries == expected)[0]))
            for mode, candidates, expected in pooled
            if mode == "hybrid" and expected in candidates.entries
        ]
        self.ranker = Ranker.fit(groups)
        if not fit_calibrators:
            return
        rows = [
            (mode, features, labels)
            for mode, candidates, expected in pooled
            for features, labels in [self._labelled(candidates, expected, mode, TRAINING_TOP)]
        ]
        fitted = fit_calibrators_per_mode(rows)
        self.calibrators = {mode: fitted.get(mode) or Calibrator.default(mode) for mode in MODES}

    def _pool(
        self, samples: Sequence[_Sample], modes: Sequence[Mode], progress: bool
    ) -> list[tuple[Mode, _Candidates, int]]:
        """The candidates of every sample query in every mode (batched dense search)."""
        widest = max(stop - start for _, _, _, (start, stop) in samples)
        multilingual = len({entry.language for entry in self.entries}) > 1
        extra = widest + (NEIGHBOURS if multilingual else 0)
        all_scores, all_ids = self._dense_neighbours(np.stack([s[0] for s in samples]), extra)
        pooled: list[tuple[Mode, _Candidates, int]] = []
        for number, (vector, query_tokens, expected, excluded) in enumerate(
            _progress(samples, progress, "calibrating", len(samples))
        ):
            neighbours = (all_scores[number], all_ids[number])
            allowed = self._sample_languages(expected, excluded) if multilingual else None
            for mode in modes:
                candidates = self._candidates(
                    vector, neighbours, query_tokens, mode, excluded, allowed
                )
                if len(candidates.entries):
                    pooled.append((mode, candidates, expected))
        return pooled

    def _sample_languages(
        self, expected: int, excluded: tuple[int, int]
    ) -> NDArray[np.bool_] | None:
        """A calibration query competes only with entries in its language, as in the bot."""
        lo, hi = excluded
        if expected >= 0:
            return self._language_mask(self.entries[expected].language)
        if hi > lo:
            return self._language_mask(self.entries[int(self.row_entry[lo])].language)
        return None

    def _labelled(
        self, candidates: _Candidates, expected: int, mode: Mode, top: int
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """The full features of a query's `top` best candidates and whether each is right."""
        features = with_fused(candidates.evidence, self.ranker.scores(candidates.evidence))
        order = np.argsort(-_mode_scores(candidates, features, mode), kind="stable")
        if mode == "lexical":
            order = order[candidates.bm25[order] > 0]
        order = order[:top]
        labels: NDArray[np.bool_] = candidates.entries[order] == expected
        return features[order], labels

    def training_rows(
        self,
        queries: Sequence[tuple[str, str | None]],
        *,
        modes: Sequence[Mode] = MODES,
        top: int = TRAINING_TOP,
        progress: bool = False,
    ) -> dict[Mode, list[tuple[NDArray[np.float64], NDArray[np.bool_]]]]:
        """Per mode and query: the features of its best candidates and which one is right.

        Used to fit confidence models on labelled queries of this KB (`knowledge_index.transfer`).

        Args:
            queries: `(query, expected entry id or None)` pairs.
            modes: Modes to rank in.
            top: Candidates kept per query, best first.
            progress: Show tqdm progress bars on stderr.

        Returns:
            For each mode, one `(features, labels)` pair per query that has candidates.

        Raises:
            ValueError: A query expects an entry this index does not have.
        """
        samples = self._labelled_samples(queries, progress)
        rows: dict[Mode, list[tuple[NDArray[np.float64], NDArray[np.bool_]]]] = {
            mode: [] for mode in modes
        }
        if not samples:
            return rows
        for mode, candidates, expected in self._pool(samples, modes, progress):
            rows[mode].append(self._labelled(candidates, expected, mode, top))
        return rows

    def _labelled_samples(
        self, queries: Sequence[tuple[str, str | None]], progress: bool
    ) -> list[_Sample]:
        """(vector, tokens, expected entry or -1, nothing left out) per labelled query."""
        if not queries:
            return []
        vectors = self.encoder.encode([text for text, _ in queries], progress=progress)
        samples: list[_Sample] = []
        for (text, expected), vector in zip(queries, vectors, strict=True):
            if expected is not None and expected not in self.entry_index:
                raise ValueError(f"calibration query expects unknown entry {expected!r}")
            target = self.entry_index[expected] if expected is not None else -1
            samples.append((vector, self.tokenizer.tokenize(text), target, (0, 0)))
        return samples

    def _calibration_samples(
        self,
        tokens: Sequence[Sequence[str]],
        budget: int,
        extra_queries: Sequence[tuple[str, str | None]],
        progress: bool,
        seed: int,
    ) -> list[_Sample]:
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
        samples: list[_Sample] = []
        for row in picked_rows:
            entry = int(self.row_entry[row])
            samples.append((self.vectors[row], tokens[row], entry, (int(row), int(row) + 1)))
        for entry in left_out:
            start, stop = int(self.offsets[entry]), int(self.offsets[entry + 1])
            row = int(rng.integers(start, stop))
            samples.append((self.vectors[row], tokens[row], -1, (start, stop)))
        samples += self._labelled_samples(extra_queries, progress)
        return samples


def _mode_scores(
    candidates: _Candidates, features: NDArray[np.float64], mode: Mode
) -> NDArray[np.float64]:
    """The ranking key of a mode: fused score, cosine or BM25."""
    if mode == "hybrid":
        return features[:, COLUMN["fused"]]
    return candidates.cosines if mode == "dense" else candidates.bm25
