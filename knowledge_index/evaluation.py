"""Retrieval evaluation: hit@k, MRR, answer rate and precision, no-answer recall, latency."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_index.encoders import Encoder
from knowledge_index.errors import QueryFileError
from knowledge_index.fusion import MODES, Mode
from knowledge_index.hits import decide
from knowledge_index.index import KnowledgeIndex
from knowledge_index.settings import KnowledgeSettings
from knowledge_index.shipped import shipped_levels
from knowledge_index.sources import load_entries, read_json_lines


@dataclass(frozen=True)
class LabelledQuery:
    """An evaluation (or calibration) query and the entry that answers it (None: no entry).

    `language` is the customer's language when known: like the bot, the evaluation then
    searches only the entries in that language.
    """

    query: str
    expected_id: str | None
    language: str | None = None


@dataclass(frozen=True)
class ModeMetrics:
    """Metrics of one ranking mode over one query set.

    Attributes:
        hit_at_1: Share of answerable queries whose top hit is right.
        hit_at_5: Share of answerable queries with the right entry in the top 5.
        mrr: Mean reciprocal rank of the right entry (answerable queries, top 5).
        answer_rate: Share of all queries answered (top confidence >= answer threshold).
        answered_precision: Share of answered queries whose top hit is right (None if none).
        no_answer_recall: Share of unanswerable queries not answered (None if there are none).
        suggestion_rate: Share of all queries given suggestions (the `suggest` band).
        suggestion_hit_rate: Share of those whose suggestions hold the right entry (None if
            none got suggestions; an unanswerable query's suggestions never do).
        p50_ms: Median search latency in milliseconds.
        p95_ms: 95th-percentile search latency in milliseconds.
    """

    hit_at_1: float | None
    hit_at_5: float | None
    mrr: float | None
    answer_rate: float
    answered_precision: float | None
    no_answer_recall: float | None
    p50_ms: float
    p95_ms: float
    suggestion_rate: float = 0.0
    suggestion_hit_rate: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        """The metrics with the JSON names `hit@1`, `hit@5`, ..."""
        data = asdict(self)
        data["hit@1"] = data.pop("hit_at_1")
        data["hit@5"] = data.pop("hit_at_5")
        return {key: _round(data[key]) for key in METRIC_NAMES}


METRIC_NAMES = (
    "hit@1",
    "hit@5",
    "mrr",
    "answer_rate",
    "answered_precision",
    "no_answer_recall",
    "suggestion_rate",
    "suggestion_hit_rate",
    "p50_ms",
    "p95_ms",
)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def load_queries(path: Path) -> list[LabelledQuery]:
    """Reads JSON Lines `{"query", "expected_id"}` (`expected_id` null: unanswerable).

    An optional `"language"` (`zh` or `en`) restricts the search to entries in that language,
    as the bot does for a customer.

    Raises:
        SourceError: The file is not UTF-8 or a line is malformed (file and line named).
    """
    queries = []
    for line, data in read_json_lines(path):
        query, expected = data.get("query"), data.get("expected_id")
        if not isinstance(query, str) or not query.strip():
            raise QueryFileError(path, line, "missing 'query'")
        if expected is not None and not isinstance(expected, str):
            raise QueryFileError(path, line, "'expected_id' must be a string or null")
        language = data.get("language")
        if language is not None and language not in ("zh", "en"):
            raise QueryFileError(path, line, "'language' must be 'zh', 'en' or null")
        queries.append(LabelledQuery(query, expected, language))
    return queries


def _share(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def evaluate(
    index: KnowledgeIndex,
    queries: Sequence[LabelledQuery],
    *,
    answer_threshold: float,
    suggest_threshold: float | None = None,
    suggest_mass: float | None = None,
    max_suggestions: int = 3,
    modes: Sequence[Mode] = MODES,
    progress: bool = False,
) -> dict[Mode, ModeMetrics]:
    """Searches every query in every mode and scores the rankings and the decision bands.

    Args:
        index: The index under test.
        queries: Labelled queries.
        answer_threshold: Top confidence at or above which a query counts as answered.
        suggest_threshold: Least confidence of a suggested hit (default: the shipped level).
        suggest_mass: Least summed confidence of the suggestions (default: the shipped level).
        max_suggestions: Most suggestions.
        modes: Modes to evaluate.
        progress: Show tqdm progress bars on stderr.

    Returns:
        Metrics per mode.

    Raises:
        ValueError: A query expects an entry that is not in the index.
    """
    unknown = {q.expected_id for q in queries if q.expected_id} - set(index.entry_index)
    if unknown:
        raise ValueError(f"queries expect entries missing from the KB: {sorted(unknown)[:5]}")
    levels = shipped_levels()
    floor = levels.suggest_threshold if suggest_threshold is None else suggest_threshold
    mass = levels.suggest_mass if suggest_mass is None else suggest_mass
    results = {}
    for mode in modes:
        index.search(queries[0].query if queries else "warm-up", 5, mode)  # warm caches
        latencies, reciprocal, answered, answered_right, rejected = [], [], 0, 0, 0
        hits_1 = hits_5 = suggested = suggested_right = 0
        iterator: Any = queries
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(queries, desc=f"eval {mode}", leave=False)
        for item in iterator:
            started = time.perf_counter()
            hits = index.search(item.query, 5, mode, language=item.language)
            latencies.append((time.perf_counter() - started) * 1000)
            ids = [hit["entry_id"] for hit in hits]
            reply = decide(hits, answer_threshold, floor, max_suggestions, suggest_mass=mass)
            is_answered = reply.band == "answer"
            answered += is_answered
            if reply.band == "suggest":
                suggested += 1
                suggested_right += any(h["entry_id"] == item.expected_id for h in reply.hits)
            if item.expected_id is None:
                rejected += not is_answered
                continue
            rank = ids.index(item.expected_id) + 1 if item.expected_id in ids else 0
            hits_1 += rank == 1
            hits_5 += rank > 0
            reciprocal.append(1.0 / rank if rank else 0.0)
            answered_right += is_answered and rank == 1
        n_answerable = len(reciprocal)
        n_unanswerable = len(queries) - n_answerable
        results[mode] = ModeMetrics(
            hit_at_1=_share(hits_1, n_answerable),
            hit_at_5=_share(hits_5, n_answerable),
            mrr=float(np.mean(reciprocal)) if reciprocal else None,
            answer_rate=answered / len(queries) if queries else 0.0,
            answered_precision=_share(answered_right, answered),
            no_answer_recall=_share(rejected, n_unanswerable),
            suggestion_rate=suggested / len(queries) if queries else 0.0,
            suggestion_hit_rate=_share(suggested_right, suggested),
            p50_ms=float(np.percentile(latencies, 50)) if latencies else 0.0,
            p95_ms=float(np.percentile(latencies, 95)) if latencies else 0.0,
        )
    return results


def evaluate_files(
    kb_path: Path,
    queries_path: Path,
    settings: KnowledgeSettings | None = None,
    *,
    encoder: Encoder | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Builds an in-memory index from a KB file or folder and evaluates a query file.

    Depends on nothing but the two files (and the embedding model): no stored index is read.

    Args:
        kb_path: JSONL KB, YAML topic file or folder of YAML topic files.
        queries_path: JSONL `{"query", "expected_id"}` lines.
        settings: Model, thresholds and limits (default: from the environment).
        encoder: An encoder to use instead of `settings.model`.
        progress: Show tqdm progress bars on stderr.

    Returns:
        A JSON-ready report: sizes, thresholds and one metrics object per mode.
    """
    settings = settings or KnowledgeSettings()
    entries = load_entries(kb_path)
    queries = load_queries(queries_path)
    from knowledge_index.knowledge_base import build_index  # imports this module's siblings

    index = build_index(entries, settings, encoder, progress=progress)
    metrics = evaluate(
        index,
        queries,
        answer_threshold=settings.answer_threshold,
        suggest_threshold=settings.suggest_threshold,
        suggest_mass=settings.suggest_mass,
        max_suggestions=settings.max_suggestions,
        progress=progress,
    )
    return {
        "kb": str(kb_path),
        "queries": str(queries_path),
        "model": index.encoder.name,
        "entries": len(entries),
        "indexed_questions": len(index.questions),
        "n_queries": len(queries),
        "n_unanswerable": sum(q.expected_id is None for q in queries),
        "answer_threshold": settings.answer_threshold,
        "suggest_threshold": settings.suggest_threshold,
        "suggest_mass": settings.suggest_mass,
        "calibration": index.calibrators["hybrid"].source,
        "build_s": index.info["build_seconds"],
        **{mode: result.to_dict() for mode, result in metrics.items()},
    }
