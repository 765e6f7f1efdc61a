"""How well the service loop keeps its promises: overdue rates, satisfaction coverage.

`overdue_rates` counts the tickets created in a period, per urgency tier and per complaint
grade: how many got their first response late (answered after `response_due_at`, or still
unanswered after it) and how many were resolved late (resolved after `resolution_due_at`,
or still unresolved after it), as of `now`. It adds the satisfaction visit's coverage
(resolved tickets whose CSAT question was sent) and how often a second follow-up solved the
unhappy customer's problem. Read-only; blocking (run it in a thread from async code).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bot.core.db import (
    ComplaintGrade,
    FollowupOutcome,
    FollowupTask,
    Notice,
    NoticeStatus,
    Ticket,
    UrgencyTier,
    session_factory,
)
from bot.service.notices import CSAT


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment.isoformat()}")
    return moment.astimezone(UTC)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _late(done: datetime | None, due: datetime | None, now: datetime) -> bool:
    if due is None:
        return False
    return done > due if done is not None else now > due


def _bucket(counts: Counter[str]) -> dict[str, Any]:
    tickets = counts["tickets"]
    return {
        "tickets": tickets,
        "response_overdue": counts["response_overdue"],
        "response_overdue_rate": _rate(counts["response_overdue"], tickets),
        "resolution_overdue": counts["resolution_overdue"],
        "resolution_overdue_rate": _rate(counts["resolution_overdue"], tickets),
    }


def overdue_rates(
    engine: Engine, since: datetime, until: datetime, now: datetime
) -> dict[str, Any]:
    """Overdue counts and rates of tickets created in [since, until), as of `now`.

    Returns `{"since", "until", "now", "total", "tiers": {tier: …}, "grades": {grade: …},
    "csat": {resolved, asked, rated, coverage}, "second_followup": {tasks, done, solved,
    solved_rate}}`; each bucket has `tickets`, `response_overdue(_rate)` and
    `resolution_overdue(_rate)`. Rates are None when there is nothing to divide by.
    """
    start, end, moment = _utc(since, "since"), _utc(until, "until"), _utc(now, "now")
    if end <= start:
        raise ValueError("until must be later than since")
    sessions = session_factory(engine)
    total: Counter[str] = Counter()
    tiers: dict[str, Counter[str]] = {tier.value: Counter() for tier in UrgencyTier}
    grades: dict[str, Counter[str]] = {grade.value: Counter() for grade in ComplaintGrade}
    resolved_ids: list[int] = []
    rated = 0
    with sessions() as session:
        rows = session.execute(
            select(
                Ticket.id,
                Ticket.urgency,
                Ticket.complaint_grade,
                Ticket.due_at,
                Ticket.response_due_at,
                Ticket.first_responded_at,
                Ticket.resolution_due_at,
                Ticket.resolved_at,
                Ticket.satisfaction,
            ).where(Ticket.created_at >= start, Ticket.created_at < end)
        ).all()
        for row in rows:
            response_due = row.response_due_at or (
                row.due_at if row.first_responded_at is None else None
            )
            marks = {"tickets": 1}
            marks["response_overdue"] = int(_late(row.first_responded_at, response_due, moment))
            marks["resolution_overdue"] = int(_late(row.resolved_at, row.resolution_due_at, moment))
            for counter in (total, tiers[row.urgency.value]):
                counter.update(marks)
            if row.complaint_grade is not None:
                grades[row.complaint_grade.value].update(marks)
            if row.resolved_at is not None:
                resolved_ids.append(row.id)
                rated += row.satisfaction is not None
        ticket_ids = [row.id for row in rows]
        asked = _count_asked(session, resolved_ids)
        outcomes = [
            outcome
            for chunk in _chunks(ticket_ids)
            for outcome in session.scalars(
                select(FollowupTask.outcome).where(FollowupTask.ticket_id.in_(chunk))
            )
        ]
    done = [outcome for outcome in outcomes if outcome is not None]
    solved = sum(outcome is FollowupOutcome.solved for outcome in done)
    return {
        "since": start.isoformat(),
        "until": end.isoformat(),
        "now": moment.isoformat(),
        "total": _bucket(total),
        "tiers": {name: _bucket(counter) for name, counter in tiers.items()},
        "grades": {name: _bucket(counter) for name, counter in grades.items()},
        "csat": {
            "resolved": len(resolved_ids),
            "asked": asked,
            "rated": rated,
            "coverage": _rate(asked, len(resolved_ids)),
        },
        "second_followup": {
            "tasks": len(outcomes),
            "done": len(done),
            "solved": solved,
            "solved_rate": _rate(solved, len(done)),
        },
    }


def _chunks(ids: list[int], size: int = 500) -> list[list[int]]:
    return [ids[index : index + size] for index in range(0, len(ids), size)]


def _count_asked(session: Session, ticket_ids: list[int]) -> int:
    """How many of these tickets had a satisfaction question sent."""
    asked: set[int] = set()
    for chunk in _chunks(ticket_ids):
        asked.update(
            ticket_id
            for ticket_id in session.scalars(
                select(Notice.ticket_id).where(
                    Notice.ticket_id.in_(chunk),
                    Notice.kind == CSAT,
                    Notice.status == NoticeStatus.sent,
                )
            )
            if ticket_id is not None
        )
    return len(asked)
