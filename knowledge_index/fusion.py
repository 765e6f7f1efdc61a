"""Fusion of dense and lexical evidence: per-candidate features and per-mode rankings."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

Mode = Literal["hybrid", "dense", "lexical"]
"""How results are ranked: both signals fused, embeddings only, or BM25 only."""

MODES: tuple[Mode, ...] = ("hybrid", "dense", "lexical")

EVIDENCE = (
    "cosine",  # best cosine between the query and the entry's questions
    "cosine_margin",  # cosine minus the best cosine of any other candidate
    "centroid_cosine",  # cosine between the query and the mean of the entry's question vectors
    "whitened_centroid",  # centroid cosine after whitening by the within-entry covariance
    "knn_share",  # softmax-weighted share of the nearest question rows that belong to the entry
    "bm25",  # BM25 over the query's idf mass, in [0, 1]
    "bm25_relative",  # BM25 over the best BM25 of the candidates
    "bm25_margin",  # normalised BM25 minus the best of any other candidate
    "coverage",  # share of the query's distinct words known to the index
    "dense_rr",  # 1 / rank by cosine among the candidates
    "lexical_rr",  # 1 / rank by BM25 (0 without any shared word)
)
"""Features computed from the two searches; larger always means "more likely right"."""

CONTEXT = (
    "centroid_margin",  # centroid cosine minus the best centroid cosine of any other candidate
    "whitened_margin",  # whitened centroid minus the best of any other candidate
    "query_coverage",  # idf share of the query's distinct words found in the entry's questions
    "query_coverage_margin",  # query coverage minus the best of any other candidate
    "rarity",  # 1 / number of the entry's questions (many phrasings inflate the best cosine)
)
"""Scale-free features the confidence models read besides the evidence (not the ranker)."""

FEATURES = (
    *EVIDENCE,
    *CONTEXT,
    "fused",  # the ranker's score fusion of the evidence
    "fused_margin",  # fused score minus the best fused score of any other candidate
    "posterior",  # log-odds of the candidate under a softmax of the fused scores, clipped
)
"""Every column of a candidate feature matrix: evidence, context, then the fused scores."""

POSTERIOR_CLIP = 6.0
"""Bound of the `posterior` log-odds (one candidate alone gets the bound)."""

COLUMN = {name: column for column, name in enumerate(FEATURES)}
"""Feature name to column of the feature matrix."""

MODE_FEATURES: dict[Mode, tuple[int, ...]] = {
    "hybrid": tuple(
        COLUMN[n]
        for n in (
            "cosine",
            "cosine_margin",
            "whitened_centroid",
            "bm25",
            "bm25_margin",
            "coverage",
            "fused",
            "fused_margin",
        )
    ),
    "dense": tuple(
        COLUMN[n]
        for n in (
            "cosine",
            "cosine_margin",
            "centroid_cosine",
            "whitened_centroid",
            "knn_share",
            "dense_rr",
        )
    ),
    "lexical": tuple(
        COLUMN[n] for n in ("bm25", "bm25_relative", "bm25_margin", "coverage", "lexical_rr")
    ),
}
"""The features each mode's confidence model may use."""


def _margin(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each value minus the largest of the others."""
    if len(values) < 2:
        return values.copy()
    order = np.argsort(-values)
    best, second = values[order[0]], values[order[1]]
    others = np.full_like(values, best)
    others[order[0]] = second
    return values - others


def _reciprocal_ranks(values: NDArray[np.float64], zero_is_absent: bool) -> NDArray[np.float64]:
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(1, len(values) + 1)
    reciprocal = 1.0 / ranks
    if zero_is_absent:
        reciprocal[values <= 0] = 0.0
    return reciprocal


def candidate_features(
    cosines: NDArray[np.float64],
    centroid_cosines: NDArray[np.float64],
    whitened_centroids: NDArray[np.float64],
    knn_shares: NDArray[np.float64],
    bm25: NDArray[np.float64],
    bm25_bound: float,
    coverage: float,
    matched_idf: NDArray[np.float64] | None = None,
    questions: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """The evidence and context matrix (candidates x EVIDENCE + CONTEXT) of one query.

    Args:
        cosines: Best cosine of each candidate (0 when dense search is off).
        centroid_cosines: Cosine to each candidate's centroid (0 when dense search is off).
        whitened_centroids: The same after whitening (see `whitening_transform`).
        knn_shares: Each candidate's weighted share of the nearest rows.
        bm25: Best raw BM25 of each candidate.
        bm25_bound: The query's BM25 normaliser (`LexicalIndex.upper_bound`): the idf sum
            of its distinct words.
        coverage: Share of the query's distinct words in the vocabulary.
        matched_idf: Per candidate, the idf sum of the query's distinct words that occur in
            any of its questions (zeros when omitted or in dense mode).
        questions: Per candidate, its number of questions (ones when omitted).

    Returns:
        A float64 matrix with one row per candidate.
    """
    normalised = np.clip(bm25 / bm25_bound, 0.0, 1.0)
    top = float(bm25.max()) if len(bm25) else 0.0
    relative = bm25 / top if top > 0 else np.zeros_like(bm25)
    matched = np.zeros_like(cosines) if matched_idf is None else matched_idf
    query_coverage = np.clip(matched / bm25_bound, 0.0, 1.0)
    counts = np.ones_like(cosines) if questions is None else np.maximum(questions, 1.0)
    return np.column_stack(
        [
            cosines,
            _margin(cosines),
            centroid_cosines,
            whitened_centroids,
            knn_shares,
            normalised,
            relative,
            _margin(normalised),
            np.full_like(cosines, coverage),
            _reciprocal_ranks(cosines, zero_is_absent=False),
            _reciprocal_ranks(bm25, zero_is_absent=True),
            _margin(centroid_cosines),
            _margin(whitened_centroids),
            query_coverage,
            _margin(query_coverage),
            1.0 / counts,
        ]
    )


def _posterior(fused: NDArray[np.float64]) -> NDArray[np.float64]:
    """Log-odds of each candidate under a softmax over all candidates, clipped."""
    if len(fused) < 2:
        return np.full_like(fused, POSTERIOR_CLIP)
    shifted = fused - fused.max()
    weights = np.exp(shifted)
    others = np.maximum(weights.sum() - weights, 1e-300)
    log_odds: NDArray[np.float64] = np.clip(
        shifted - np.log(others), -POSTERIOR_CLIP, POSTERIOR_CLIP
    )
    return log_odds


def with_fused(evidence: NDArray[np.float64], fused: NDArray[np.float64]) -> NDArray[np.float64]:
    """The full feature matrix: evidence and context, the fused score, its margin and odds."""
    return np.column_stack([evidence, fused, _margin(fused), _posterior(fused)])


def whitening_transform(
    vectors: NDArray[np.float32], offsets: NDArray[np.int64]
) -> NDArray[np.float32]:
    """The inverse square root of the shrunk within-entry covariance of question vectors.

    Phrasings of one entry vary along a few directions; whitening shrinks those so that the
    query's distance to an entry's centroid weighs the directions that separate entries.
    Shrinkage towards the identity grows as the KB has fewer phrasings per dimension.

    Args:
        vectors: (rows, d) question vectors, grouped by entry.
        offsets: Entry row boundaries (`entries + 1` values).

    Returns:
        A (d, d) matrix; the identity when no entry has two phrasings.
    """
    dimension = vectors.shape[1]
    counts = np.diff(offsets)
    freedom = int(counts.sum() - len(counts))
    if freedom <= 0:
        return np.eye(dimension, dtype=np.float32)
    data = vectors.astype(np.float64)
    means = np.add.reduceat(data, offsets[:-1], axis=0) / counts[:, None]
    residuals = data - np.repeat(means, counts, axis=0)
    scatter = residuals.T @ residuals / freedom
    shrink = float(np.clip(dimension / freedom, 0.1, 1.0))
    scale = float(np.trace(scatter)) / dimension
    covariance = (1 - shrink) * scatter + shrink * scale * np.eye(dimension)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    inverse_root = eigenvectors @ np.diag(1.0 / np.sqrt(eigenvalues)) @ eigenvectors.T
    whitening: NDArray[np.float32] = (inverse_root * np.sqrt(scale)).astype(np.float32)
    return whitening
