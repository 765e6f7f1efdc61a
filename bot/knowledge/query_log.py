"""The record of questions taken to the knowledge base: misses, feedback, self-service rate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, func, select

from bot.core.db import GENERATED, KbFeedback, KbOutcome, KbQuery, session_factory


@dataclass(frozen=True)
class SelfServiceReport:
    """How many knowledge-base questions the bot resolved on its own."""

    questions: int
    answered: int
    rejected: int
    suggested: int
    unanswered: int

    @property
    def rate(self) -> float:
        """Answered and not rejected, over all questions (0.0 without questions)."""
        return (self.answered - self.rejected) / self.questions if self.questions else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The counts and the rate, for JSON output."""
        return {
            "questions": self.questions,
            "answered": self.answered,
            "rejected": self.rejected,
            "suggested": self.suggested,
            "unanswered": self.unanswered,
            "self_service_rate": round(self.rate, 4),
        }


class KbLog:
    """Writes and reads `kb_queries` (blocking: call it from a worker thread)."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)

    def record(
        self,
        *,
        sender_id: str,
        channel: str,
        language: str,
        query: str,
        outcome: KbOutcome,
        entry_id: str | None,
        confidence: float,
        top_hits: list[dict[str, Any]],
        index_version: str,
    ) -> int:
        """Stores one question and what the bot did; returns its id."""
        row = KbQuery(
            sender_id=sender_id,
            channel=channel,
            language=language,
            query=query,
            outcome=outcome,
            entry_id=entry_id,
            confidence=confidence,
            top_hits=top_hits,
            index_version=index_version,
            created_at=datetime.now(timezone.utc).replace(tzinfo=None),
        )
        with self._sessions.begin() as session:
            session.add(row)
        return row.id

    def record_feedback(self, sender_id: str, feedback: KbFeedback) -> int | None:
        """Attaches feedback to the sender's latest answered question; returns its id."""
        with self._sessions.begin() as session:
            row = session.scalars(
                select(KbQuery)
                .where(KbQuery.sender_id == sender_id, KbQuery.outcome == KbOutcome.answered)
                .order_by(KbQuery.id.desc())
                .limit(1)
            ).first()
            if row is None:
                return None
            row.feedback = feedback
            return row.id

    def self_service(self, since: datetime | None = None) -> SelfServiceReport:
        """Counts questions by outcome and rejected answers, optionally since a time."""
        with self._sessions() as session:
            query = (
                select(KbQuery.outcome, KbQuery.feedback, func.count())
                .where(KbQuery.index_version != GENERATED)  # real customers only
                .group_by(KbQuery.outcome, KbQuery.feedback)
            )
            if since is not None:
                query = query.where(KbQuery.created_at >= since)
            counts = {(o, f): n for o, f, n in session.execute(query).all()}
        by_outcome = {
            outcome: sum(n for (o, _), n in counts.items() if o == outcome) for outcome in KbOutcome
        }
        return SelfServiceReport(
            questions=sum(counts.values()),
            answered=by_outcome[KbOutcome.answered],
            rejected=counts.get((KbOutcome.answered, KbFeedback.not_solved), 0),
            suggested=by_outcome[KbOutcome.suggested],
            unanswered=by_outcome[KbOutcome.no_answer],
        )

    def misses(self, limit: int = 100) -> list[KbQuery]:
        """Newest questions the editors should look at: unanswered, suggested-only, rejected."""
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(KbQuery)
                    .where(
                        (KbQuery.outcome != KbOutcome.answered)
                        | (KbQuery.feedback == KbFeedback.not_solved),
                        KbQuery.index_version != GENERATED,
                    )
                    .order_by(KbQuery.id.desc())
                    .limit(limit)
                )
            )
