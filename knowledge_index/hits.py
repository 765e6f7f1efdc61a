"""Search results and the bot's decision bands (answer, suggest, no answer)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, TypedDict

from knowledge_index.shipped import shipped_levels

Band = Literal["answer", "suggest", "none"]

SUGGEST_MASS = shipped_levels().suggest_mass
"""Default least summed confidence of the suggestions (the shipped level)."""


class Hit(TypedDict):
    """One knowledge entry found for a query (JSON-ready).

    `score` ranks hits within their mode (hybrid: fused logit, dense: cosine, lexical: BM25);
    `confidence` is the calibrated probability in [0, 1] that the entry is the right one.
    `question` is the entry's question (or alternative) that matched best.
    """

    entry_id: str
    score: float
    confidence: float
    question: str
    answer: str
    link: str | None
    topic: str
    language: str
    dense_score: float
    lexical_score: float


@dataclass(frozen=True)
class Reply:
    """What the bot should do with a query.

    Attributes:
        band: `answer` (top hit confident), `suggest` (offer `hits` as questions) or `none`.
        hits: The answer hit, the suggestions, or nothing.
    """

    band: Band
    hits: list[Hit] = field(default_factory=list)


def decide(
    hits: Sequence[Hit],
    answer_threshold: float,
    suggest_threshold: float,
    max_suggestions: int = 3,
    *,
    suggest_mass: float = SUGGEST_MASS,
) -> Reply:
    """Sorts hits into a decision band.

    With calibrated confidences (the probability that a hit is the right entry; at most one
    is), the summed confidence of the suggested hits estimates the chance that the right
    entry is among them. Suggestions are shown only when that chance is at least
    `suggest_mass`, and a hit below `suggest_threshold` is never suggested.

    Args:
        hits: Hits ranked best first.
        answer_threshold: Confidence at or above which the top hit is answered.
        suggest_threshold: Confidence at or above which a hit may be suggested.
        max_suggestions: Most suggestions.
        suggest_mass: Least summed confidence of the suggested hits (0 suggests any hit
            above `suggest_threshold`, the earlier rule). The default is the level
            shipped with the calibration (`knowledge_index.shipped`).

    Returns:
        The reply band with its hits.
    """
    if hits and hits[0]["confidence"] >= answer_threshold:
        return Reply("answer", [hits[0]])
    suggestions = [hit for hit in hits if hit["confidence"] >= suggest_threshold]
    suggestions = suggestions[:max_suggestions]
    if suggestions and sum(hit["confidence"] for hit in suggestions) >= suggest_mass:
        return Reply("suggest", suggestions)
    return Reply("none")
