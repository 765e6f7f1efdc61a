"""Counting helpers of the service's figures (`bot.supervision.metrics` puts them together).

Percentiles, rates and SLA states, and one tally per table over a period: conversations,
tickets, QA scores, service records and knowledge-base queries. Read-only and blocking.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from bot.core.db import (
    Agent,
    Conversation,
    KbFeedback,
    KbOutcome,
    KbQuery,
    QaFinding,
    QaScore,
    ServiceRecord,
    Ticket,
    TicketStatus,
)
from bot.service.policy import ServicePolicy
from bot.service.reading import normalise

TIERS = ("urgent", "normal", "consultation")
"""Urgency tiers, most urgent first (`UrgencyTier`)."""
GRADES = ("general", "major")
"""Complaint grades (`ComplaintGrade`)."""
OUTCOMES = ("self_service", "ticket", "handoff", "unresolved", "abandoned")
"""How a conversation ended (`Conversation.outcome`)."""
SLA_STATES = ("hit", "missed", "pending")
OPEN_TICKET_STATUSES = (
    TicketStatus.open,
    TicketStatus.pending_agent,
    TicketStatus.in_progress,
    TicketStatus.waiting_customer,
)
"""Tickets still being worked."""
DONE_TICKET_STATUSES = (TicketStatus.resolved, TicketStatus.closed)
ONLINE_WINDOW = timedelta(minutes=5)
"""An agent the desk heard from within this window is online."""
TOP_QUESTIONS = 10
HIGHER_IS_BETTER = {
    "need_accuracy": True,
    "record_completeness": True,
    "self_service_rate": True,
    "answer_accuracy": True,
    "sla_hit_rate": True,
    "csat_response_rate": True,
    "satisfaction": True,
    "qa_pass_rate": True,
    "complaint_rate": False,
}
"""The service plan's targets (`policy.supervision.targets`): is a higher actual value better."""


# --------------------------------------------------------------------------- small helpers
def utc(moment: datetime, name: str = "moment") -> datetime:
    """`moment` in UTC; a naive datetime is refused (an instant needs a zone)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment.isoformat()}")
    return moment.astimezone(UTC)


def rate(part: int, whole: int) -> float | None:
    """`part / whole` rounded to 4 places, None when `whole` is 0."""
    return round(part / whole, 4) if whole else None


def percentile(values: Sequence[float], share: float) -> float | None:
    """The `share` (0..1) percentile, linear between the closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * share
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def rounded(value: float | None, places: int) -> float | None:
    """`value` rounded (None stays None)."""
    return None if value is None else round(value, places)


def spread(values: Sequence[float], unit: str, places: int) -> dict[str, Any]:
    """`{count, p50_<unit>, p90_<unit>}` of the values."""
    return {
        "count": len(values),
        f"p50_{unit}": rounded(percentile(values, 0.5), places),
        f"p90_{unit}": rounded(percentile(values, 0.9), places),
    }


def _naive(moment: datetime) -> datetime:
    """UTC without a zone: `kb_queries.created_at` is a naive UTC `DateTime`."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def question_key(text: str) -> str:
    """A question for grouping: normalised, punctuation dropped ("" when too short to count)."""
    key = re.sub(r"[\W_]+", " ", normalise(text)).strip()
    return key if len(key.replace(" ", "")) >= 2 else ""


def is_handoff(outcome: str | None, handoff_requested_at: datetime | None) -> bool:
    """A person was asked for (or took part): the dashboard's "handoff" conversations."""
    return outcome == "handoff" or handoff_requested_at is not None


def sla_state(
    *,
    due_at: datetime | None,
    response_due_at: datetime | None,
    first_responded_at: datetime | None,
    resolution_due_at: datetime | None,
    resolved_at: datetime | None,
    as_of: datetime,
) -> str:
    """`hit`, `missed` or `pending` for a ticket, as things stood at `as_of`.

    Missed: first answered after its response deadline or resolved after its resolution
    deadline, or still unanswered / unresolved past one at `as_of`. Pending: not answered
    yet and nothing overdue. Hit: answered in time (and, once resolved, resolved in time).
    Without a response deadline (older tickets) an unanswered ticket's `due_at` is used.
    """
    responded = first_responded_at if first_responded_at and first_responded_at <= as_of else None
    resolved = resolved_at if resolved_at and resolved_at <= as_of else None
    response_due = response_due_at
    if responded is None and response_due is None:
        response_due = due_at
    late_response = response_due is not None and (responded or as_of) > response_due
    late_resolution = resolution_due_at is not None and (resolved or as_of) > resolution_due_at
    if late_response or late_resolution:
        return "missed"
    if responded is None and resolved is None:
        return "pending"
    return "hit"


def sla_missed_clause(as_of: datetime) -> ColumnElement[bool]:
    """SQL of `sla_state(...) == "missed"` on `tickets`, as of `as_of`."""
    answered = and_(Ticket.first_responded_at.is_not(None), Ticket.first_responded_at <= as_of)
    resolved = and_(Ticket.resolved_at.is_not(None), Ticket.resolved_at <= as_of)
    late_response = or_(
        and_(
            answered,
            Ticket.response_due_at.is_not(None),
            Ticket.first_responded_at > Ticket.response_due_at,
        ),
        and_(
            or_(Ticket.first_responded_at.is_(None), Ticket.first_responded_at > as_of),
            func.coalesce(Ticket.response_due_at, Ticket.due_at) < as_of,
        ),
    )
    late_resolution = and_(
        Ticket.resolution_due_at.is_not(None),
        or_(
            and_(resolved, Ticket.resolved_at > Ticket.resolution_due_at),
            and_(
                or_(Ticket.resolved_at.is_(None), Ticket.resolved_at > as_of),
                Ticket.resolution_due_at < as_of,
            ),
        ),
    )
    return or_(late_response, late_resolution)


def sla_bucket(counts: Counter[str]) -> dict[str, Any]:
    """`{tickets, hit, missed, pending, rate}`: rate = hit / (hit + missed)."""
    return {
        "tickets": counts["tickets"],
        "hit": counts["hit"],
        "missed": counts["missed"],
        "pending": counts["pending"],
        "rate": rate(counts["hit"], counts["hit"] + counts["missed"]),
    }


# --------------------------------------------------------------------------- tallies
def conversation_figures(
    session: Session, policy: ServicePolicy, start: datetime, end: datetime
) -> dict[str, Any]:
    """Conversations started in the period: counts, rates, first response, CSAT, hours."""
    rows = session.execute(
        select(
            Conversation.conversation_id,
            Conversation.channel,
            Conversation.language,
            Conversation.source,
            Conversation.started_at,
            Conversation.outcome,
            Conversation.handoff_requested_at,
            Conversation.first_response_seconds,
            Conversation.first_question,
            Conversation.ticket_id,
            func.coalesce(Conversation.rating, Ticket.satisfaction).label("rating"),
            Ticket.urgency,
        )
        .outerjoin(Ticket, Ticket.id == Conversation.ticket_id)
        .where(Conversation.started_at >= start, Conversation.started_at < end)
    ).all()
    channels: Counter[str] = Counter()
    languages: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    outcomes: Counter[str] = Counter({name: 0 for name in OUTCOMES})
    first_response: list[float] = []
    by_tier: dict[str, list[float]] = {tier: [] for tier in TIERS}
    ratings: Counter[str] = Counter({str(score): 0 for score in range(1, 6)})
    rateable = rated = 0
    hours = [{"hour": hour, "conversations": 0, "handoffs": 0} for hour in range(24)]
    unresolved: list[tuple[str, str]] = []
    for row in rows:
        channels[row.channel] += 1
        languages[row.language] += 1
        sources[row.source] += 1
        outcomes[row.outcome or "open"] += 1
        hour = hours[row.started_at.astimezone(policy.zone).hour]
        hour["conversations"] += 1
        hour["handoffs"] += is_handoff(row.outcome, row.handoff_requested_at)
        if row.first_response_seconds is not None:
            first_response.append(row.first_response_seconds)
            if row.urgency is not None:
                by_tier[row.urgency.value].append(row.first_response_seconds)
        if row.rating is not None and 1 <= row.rating <= 5:
            rated += 1
            ratings[str(row.rating)] += 1
        if row.rating is not None or row.outcome == "handoff" or row.ticket_id is not None:
            rateable += 1
        if row.outcome == "unresolved" and row.first_question:
            unresolved.append((row.conversation_id, row.first_question))
    ended = sum(outcomes[name] for name in OUTCOMES)
    scores = [int(score) * count for score, count in ratings.items()]
    return {
        "conversations": len(rows),
        "ended_conversations": ended,
        "conversations_by_channel": dict(channels.most_common()),
        "conversations_by_language": dict(languages.most_common()),
        "conversations_by_source": dict(sources.most_common()),
        "outcomes": dict(outcomes),
        "self_service_rate": rate(outcomes["self_service"], ended),
        "handoff_rate": rate(outcomes["handoff"], ended),
        "ticket_rate": rate(outcomes["ticket"], ended),
        "first_response_p50_seconds": rounded(percentile(first_response, 0.5), 1),
        "first_response_p90_seconds": rounded(percentile(first_response, 0.9), 1),
        "first_response_by_tier": {
            tier: spread(values, "seconds", 1) for tier, values in by_tier.items()
        },
        "csat_rated": rated,
        "csat_rateable": rateable,
        "csat_response_rate": rate(rated, rateable),
        "csat_average": round(sum(scores) / rated, 2) if rated else None,
        "csat_distribution": dict(ratings),
        "hourly": hours,
        "unresolved_questions": unresolved,
    }


def ticket_figures(
    session: Session, start: datetime, end: datetime, as_of: datetime
) -> dict[str, Any]:
    """Tickets created in the period (SLA, first response) and resolved in it (resolution)."""
    created = session.execute(
        select(
            Ticket.urgency,
            Ticket.complaint_grade,
            Ticket.created_at,
            Ticket.due_at,
            Ticket.response_due_at,
            Ticket.first_responded_at,
            Ticket.resolution_due_at,
            Ticket.resolved_at,
        ).where(Ticket.created_at >= start, Ticket.created_at < end)
    ).all()
    total: Counter[str] = Counter()
    tiers: dict[str, Counter[str]] = {tier: Counter() for tier in TIERS}
    grades: dict[str, Counter[str]] = {grade: Counter() for grade in GRADES}
    response: list[float] = []
    response_by_tier: dict[str, list[float]] = {tier: [] for tier in TIERS}
    for row in created:
        state = sla_state(
            due_at=row.due_at,
            response_due_at=row.response_due_at,
            first_responded_at=row.first_responded_at,
            resolution_due_at=row.resolution_due_at,
            resolved_at=row.resolved_at,
            as_of=as_of,
        )
        marks = Counter({"tickets": 1, state: 1})
        total.update(marks)
        tiers[row.urgency.value].update(marks)
        if row.complaint_grade is not None:
            grades[row.complaint_grade.value].update(marks)
        if row.first_responded_at is not None and row.first_responded_at <= as_of:
            seconds = (row.first_responded_at - row.created_at).total_seconds()
            response.append(seconds)
            response_by_tier[row.urgency.value].append(seconds)
    resolved = session.execute(
        select(Ticket.urgency, Ticket.created_at, Ticket.resolved_at).where(
            Ticket.status.in_(DONE_TICKET_STATUSES),
            Ticket.resolved_at >= start,
            Ticket.resolved_at < end,
        )
    ).all()
    hours: list[float] = []
    hours_by_tier: dict[str, list[float]] = {tier: [] for tier in TIERS}
    for urgency, created_at, resolved_at in resolved:
        if resolved_at is None:  # the query excludes them
            continue
        value = (resolved_at - created_at).total_seconds() / 3600
        hours.append(value)
        hours_by_tier[urgency.value].append(value)
    complaints = sum(counter["tickets"] for counter in grades.values())
    return {
        "tickets_created": len(created),
        "tickets_resolved": len(resolved),
        "complaint_tickets": complaints,
        "ticket_first_response_p50_seconds": rounded(percentile(response, 0.5), 1),
        "ticket_first_response_p90_seconds": rounded(percentile(response, 0.9), 1),
        "ticket_first_response_by_tier": {
            tier: spread(values, "seconds", 1) for tier, values in response_by_tier.items()
        },
        "resolution_p50_hours": rounded(percentile(hours, 0.5), 2),
        "resolution_p90_hours": rounded(percentile(hours, 0.9), 2),
        "resolution_by_tier": {
            tier: spread(values, "hours", 2) for tier, values in hours_by_tier.items()
        },
        "sla": sla_bucket(total),
        "sla_hit_rate": rate(total["hit"], total["hit"] + total["missed"]),
        "sla_by_tier": {tier: sla_bucket(counter) for tier, counter in tiers.items()},
        "sla_by_complaint_grade": {grade: sla_bucket(counter) for grade, counter in grades.items()},
    }


def qa_figures(session: Session, start: datetime, end: datetime) -> dict[str, Any]:
    """QA scores of the period's conversations: the bot, each agent, the red cards."""
    in_period = and_(Conversation.started_at >= start, Conversation.started_at < end)
    scores = session.execute(
        select(
            QaScore.id,
            QaScore.conversation_pk,
            QaScore.subject_key,
            QaScore.score,
            QaScore.findings,
            QaScore.red_card,
        )
        .join(Conversation, Conversation.id == QaScore.conversation_pk)
        .where(in_period)
    ).all()
    names: dict[str, str] = {
        username: name
        for username, name in session.execute(select(Agent.username, Agent.display_name))
    }
    subjects: dict[str, list[Any]] = defaultdict(list)
    for row in scores:
        subjects[row.subject_key].append(row)
    bot = _subject_summary(subjects.pop("bot", []))
    agents = []
    for key in sorted(subjects):
        username = key.removeprefix("agent:")
        agents.append(
            {"agent": username, "name": names.get(username, username)}
            | _subject_summary(subjects[key])
        )
    red_scores = {row.id: row for row in scores if row.red_card}
    findings = session.execute(
        select(
            QaFinding.score_id,
            QaFinding.rule_id,
            QaFinding.title,
            QaFinding.detail,
            QaFinding.points,
            QaFinding.red_card,
        )
        .join(QaScore, QaScore.id == QaFinding.score_id)
        .join(Conversation, Conversation.id == QaFinding.conversation_pk)
        .where(in_period, QaScore.red_card.is_(True), QaFinding.appeal_status != "overturned")
        .order_by(QaFinding.id)
    ).all()
    by_score: dict[int, list[Any]] = defaultdict(list)
    for finding in findings:
        by_score[finding.score_id].append(finding)
    cards = [card for row in red_scores.values() for card in _red_cards(row, by_score[row.id])]
    cards.sort(key=lambda card: (card["rule_id"] is None, card["score"], card["conversation_pk"]))
    passed = sum(not row.red_card for row in scores)
    return {
        "qa_scored_subjects": len(scores),
        "qa_pass_rate": rate(passed, len(scores)),
        "qa_bot_average": bot["average"],
        "qa_bot": bot,
        "qa_agents": agents,
        "red_cards": cards,
        "red_card_count": len({row.conversation_pk for row in red_scores.values()}),
    }


def _subject_summary(rows: Sequence[Any]) -> dict[str, Any]:
    return {
        "conversations": len({row.conversation_pk for row in rows}),
        "average": round(sum(row.score for row in rows) / len(rows), 1) if rows else None,
        "findings": sum(row.findings for row in rows),
        "red_cards": sum(bool(row.red_card) for row in rows),
    }


def _red_cards(score: Any, findings: Sequence[Any]) -> list[dict[str, Any]]:
    """The red cards of a red-carded score: one per red-card finding, else one for the score.

    A score below the red line without a red-card rule lists the findings that cost points.
    """
    subject = score.subject_key
    base = {
        "conversation_pk": score.conversation_pk,
        "link": conversation_link(score.conversation_pk),
        "subject": subject,
        "agent": subject.removeprefix("agent:") if subject.startswith("agent:") else None,
        "score": score.score,
    }
    fatal = [finding for finding in findings if finding.red_card]
    if fatal:
        return [base | {"rule_id": f.rule_id, "title": f.title, "detail": f.detail} for f in fatal]
    costs = "; ".join(f"{f.title} −{f.points}" for f in findings)
    return [
        base
        | {
            "rule_id": None,
            "title": "总分低于红线 Score below the red line",
            "detail": f"得分 score {score.score:g}" + (f": {costs}" if costs else ""),
        }
    ]


def conversation_link(pk: int) -> str:
    """The desk page of a recorded conversation (relative to the desk's base URL)."""
    return f"/desk/conversations/{pk}"


def record_figures(session: Session, start: datetime, end: datetime) -> dict[str, int]:
    """Service records created (completeness) and confirmed (need accuracy) in the period."""
    created = session.execute(
        select(
            func.count(),
            func.count().filter(ServiceRecord.completeness >= 0.999),
        ).where(ServiceRecord.created_at >= start, ServiceRecord.created_at < end)
    ).one()
    confirmed = session.execute(
        select(
            func.count(),
            func.count().filter(ServiceRecord.correction_rounds == 0),
        ).where(ServiceRecord.confirmed_at >= start, ServiceRecord.confirmed_at < end)
    ).one()
    return {
        "records": created[0],
        "complete_records": created[1],
        "confirmed": confirmed[0],
        "confirmed_uncorrected": confirmed[1],
    }


def kb_figures(session: Session, start: datetime, end: datetime) -> dict[str, Any]:
    """Knowledge-base answers (and the rejected ones) and the questions it could not answer."""
    window = and_(KbQuery.created_at >= _naive(start), KbQuery.created_at < _naive(end))
    answered, rejected = session.execute(
        select(
            func.count(),
            func.count().filter(KbQuery.feedback == KbFeedback.not_solved),
        ).where(window, KbQuery.outcome == KbOutcome.answered)
    ).one()
    unanswered = session.execute(
        select(KbQuery.sender_id, KbQuery.query).where(
            window,
            or_(KbQuery.outcome == KbOutcome.no_answer, KbQuery.feedback == KbFeedback.not_solved),
        )
    ).all()
    return {
        "answered": answered,
        "rejected": rejected,
        "unanswered": [(row.sender_id, row.query) for row in unanswered],
    }


def top_unanswered(
    *sources: Iterable[tuple[str, str]], limit: int = TOP_QUESTIONS
) -> list[dict[str, Any]]:
    """Questions asked but not answered, grouped by `question_key`, most asked first.

    A (customer, question) pair counts once, whether the knowledge base logged it or the
    conversation ended unresolved on it.
    """
    seen: set[tuple[str, str]] = set()
    counts: Counter[str] = Counter()
    wordings: dict[str, Counter[str]] = defaultdict(Counter)
    for source in sources:
        for sender, text in source:
            key = question_key(text)
            if not key or (sender, key) in seen:
                continue
            seen.add((sender, key))
            counts[key] += 1
            wordings[key][text.strip()] += 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [
        {"question": wordings[key].most_common(1)[0][0], "key": key, "count": count}
        for key, count in ranked
    ]


def target_actuals(
    policy: ServicePolicy,
    figures: dict[str, Any],
    records: dict[str, int],
    kb: dict[str, Any],
    tickets: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """Each target of the service plan with its actual value and whether it is met."""
    actual = {
        "need_accuracy": rate(records["confirmed_uncorrected"], records["confirmed"]),
        "record_completeness": rate(records["complete_records"], records["records"]),
        "self_service_rate": figures["self_service_rate"],
        "answer_accuracy": rate(kb["answered"] - kb["rejected"], kb["answered"]),
        "sla_hit_rate": figures["sla_hit_rate"],
        "csat_response_rate": figures["csat_response_rate"],
        "satisfaction": figures["csat_average"],
        "qa_pass_rate": figures["qa_pass_rate"],
        "complaint_rate": rate(tickets["complaint_tickets"], figures["conversations"]),
    }
    return target_table(policy, actual)


def target_table(
    policy: ServicePolicy, actual: dict[str, float | None]
) -> dict[str, dict[str, Any]]:
    """`{name: {target, actual, met}}` (met None without data; complaint rate: lower is met)."""
    goals = policy.supervision.targets
    table: dict[str, dict[str, Any]] = {}
    for name, value in actual.items():
        goal = float(getattr(goals, name))
        met = None
        if value is not None:
            met = value >= goal if HIGHER_IS_BETTER[name] else value <= goal
        table[name] = {"target": goal, "actual": value, "met": met}
    return table
