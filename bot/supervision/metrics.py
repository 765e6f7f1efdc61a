"""The service's figures: a day's (or any period's) metrics and the live overview.

`period_metrics` is the content of a daily report's `metrics.json`: conversations started in
the period (by channel, language, outcome, hour), first response and resolution times,
SLA hits by urgency tier and complaint grade, satisfaction, QA scores and red cards, the
questions the bot could not answer, and the service plan's targets with the actual values.
Tickets count by their creation (SLA, first response, complaints) or resolution time
(resolution); satisfaction is the conversation's rating, else its ticket's.
A period's SLA states are taken as of its end (or now, for a period not over yet), so a
past day's report reads the same whenever it is built. Rates are 0..1 (None: no data).
Every figure maps to a `ConversationFilter` of the conversations behind it (`DRILLDOWN`);
`conversation_rows` and `write_csv` list them (the dashboard's drill-down and CSV export).

`live_overview` is the dashboard's tiles: bounded, indexed queries only (today's rows).
Everything here is read-only and blocking: call it from a thread in async code.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TextIO

from sqlalchemy import Engine, String, and_, cast, exists, func, not_, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from bot.core.db import (
    Agent,
    ComplaintGrade,
    Conversation,
    DeskAlert,
    Handoff,
    HandoffStatus,
    QaFinding,
    Ticket,
    UrgencyTier,
    session_factory,
)
from bot.service.policy import ServicePolicy
from bot.supervision.errors import QaError
from bot.supervision.tallies import (
    GRADES,
    ONLINE_WINDOW,
    OPEN_TICKET_STATUSES,
    OUTCOMES,
    TIERS,
    conversation_figures,
    conversation_link,
    is_handoff,
    kb_figures,
    percentile,
    qa_figures,
    rate,
    record_figures,
    rounded,
    sla_missed_clause,
    sla_state,
    target_actuals,
    ticket_figures,
    top_unanswered,
    utc,
)

__all__ = [
    "DRILLDOWN",
    "ConversationFilter",
    "conversation_rows",
    "csv_chunks",
    "day_bounds",
    "day_metrics",
    "drilldown_query",
    "live_overview",
    "period_metrics",
    "policy_today",
    "write_csv",
]


def day_bounds(policy: ServicePolicy, day: date) -> tuple[datetime, datetime]:
    """UTC start (inclusive) and end (exclusive) of `day` in the policy's time zone."""
    zone = policy.zone
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def policy_today(policy: ServicePolicy, now: datetime) -> date:
    """The calendar date of `now` in the policy's time zone."""
    return utc(now, "now").astimezone(policy.zone).date()


# --------------------------------------------------------------------------- period metrics
def day_metrics(
    engine: Engine, policy: ServicePolicy, day: date, *, now: datetime | None = None
) -> dict[str, Any]:
    """`period_metrics` of one calendar day in the policy's time zone (`date` set)."""
    start, end = day_bounds(policy, day)
    metrics = period_metrics(engine, policy, start, end, now=now)
    metrics["date"] = day.isoformat()
    return metrics


def period_metrics(
    engine: Engine,
    policy: ServicePolicy,
    start: datetime,
    end: datetime,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The figures of conversations and tickets of [start, end): see the module docstring.

    `now` (default: the clock) only matters for a period not over yet: SLA states are taken
    as of min(end, now). Raises ValueError for naive or reversed bounds.
    """
    start, end = utc(start, "start"), utc(end, "end")
    if end <= start:
        raise ValueError("end must be later than start")
    as_of = min(end, utc(now, "now") if now is not None else datetime.now(UTC))
    with session_factory(engine)() as session:
        conversations = conversation_figures(session, policy, start, end)
        tickets = ticket_figures(session, start, end, as_of)
        qa = qa_figures(session, start, end)
        records = record_figures(session, start, end)
        kb = kb_figures(session, start, end)
        conversations["top_unanswered"] = top_unanswered(
            kb.pop("unanswered"), conversations.pop("unresolved_questions")
        )
    figures: dict[str, Any] = {
        "date": None,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "as_of": as_of.isoformat(),
        "timezone": policy.timezone,
        **conversations,
        **tickets,
        **qa,
    }
    figures["targets"] = target_actuals(policy, figures, records, kb, tickets)
    return figures


# --------------------------------------------------------------------------- live overview
def live_overview(engine: Engine, policy: ServicePolicy, now: datetime) -> dict[str, Any]:
    """The dashboard's live tiles and today's headline figures (policy-zone day of `now`).

    Only indexed, bounded queries: open tickets by status, queued handoffs, unacknowledged
    alerts, pending appeals, and today's conversations and tickets.
    """
    now = utc(now, "now")
    start, _ = day_bounds(policy, policy_today(policy, now))
    open_ticket = Ticket.status.in_(OPEN_TICKET_STATUSES)
    with session_factory(engine)() as session:
        open_tickets, at_risk, overdue = session.execute(
            select(
                func.count(),
                func.count().filter(Ticket.sla_state == "at_risk"),
                func.count().filter(Ticket.due_at < now),
            ).where(open_ticket)
        ).one()
        unattended = session.scalar(
            select(func.count()).where(Handoff.status == HandoffStatus.queued)
        )
        online = session.scalar(
            select(func.count()).where(
                Agent.active.is_(True), Agent.last_seen_at >= now - ONLINE_WINDOW
            )
        )
        appeals = session.scalar(select(func.count()).where(QaFinding.appeal_status == "pending"))
        alerts = session.scalar(select(func.count()).where(DeskAlert.acknowledged_at.is_(None)))
        today = _today(session, policy, start, now)
    return {
        "at": now.isoformat(),
        "date": policy_today(policy, now).isoformat(),
        "open_tickets": open_tickets,
        "unattended": unattended or 0,
        "at_risk": at_risk,
        "overdue": overdue,
        "agents_online": online or 0,
        "pending_appeals": appeals or 0,
        "open_alerts": alerts or 0,
        "today": today,
    }


def _today(
    session: Session, policy: ServicePolicy, start: datetime, now: datetime
) -> dict[str, Any]:
    """Today's conversations (light columns) and tickets, so far."""
    rows = session.execute(
        select(
            Conversation.started_at,
            Conversation.outcome,
            Conversation.handoff_requested_at,
            Conversation.first_response_seconds,
            Conversation.red_cards,
            func.coalesce(Conversation.rating, Ticket.satisfaction).label("rating"),
        )
        .outerjoin(Ticket, Ticket.id == Conversation.ticket_id)
        .where(Conversation.started_at >= start, Conversation.started_at <= now)
    ).all()
    hours = [{"hour": hour, "conversations": 0, "handoffs": 0} for hour in range(24)]
    outcomes: Counter[str] = Counter()
    waits: list[float] = []
    ratings: list[int] = []
    red = 0
    for row in rows:
        hour = hours[row.started_at.astimezone(policy.zone).hour]
        hour["conversations"] += 1
        hour["handoffs"] += is_handoff(row.outcome, row.handoff_requested_at)
        outcomes[row.outcome or "open"] += 1
        if row.first_response_seconds is not None:
            waits.append(row.first_response_seconds)
        if row.rating is not None:
            ratings.append(row.rating)
        red += row.red_cards > 0
    tickets = session.execute(
        select(
            Ticket.due_at,
            Ticket.response_due_at,
            Ticket.first_responded_at,
            Ticket.resolution_due_at,
            Ticket.resolved_at,
        ).where(Ticket.created_at >= start, Ticket.created_at <= now)
    ).all()
    states = Counter(
        sla_state(
            due_at=row.due_at,
            response_due_at=row.response_due_at,
            first_responded_at=row.first_responded_at,
            resolution_due_at=row.resolution_due_at,
            resolved_at=row.resolved_at,
            as_of=now,
        )
        for row in tickets
    )
    ended = sum(outcomes[name] for name in OUTCOMES)
    return {
        "conversations": len(rows),
        "open_conversations": outcomes["open"],
        "self_service_rate": rate(outcomes["self_service"], ended),
        "handoff_rate": rate(outcomes["handoff"], ended),
        "red_cards": red,
        "csat_average": round(sum(ratings) / len(ratings), 2) if ratings else None,
        "first_response_p50_seconds": rounded(percentile(waits, 0.5), 1),
        "sla_hit_rate": rate(states["hit"], states["hit"] + states["missed"]),
        "hourly": hours,
    }


# --------------------------------------------------------------------------- drill-down
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
MAX_DAYS = 366
"""The longest date range a filter may span."""
MAX_PAGE = 1000


@dataclass(frozen=True)
class ConversationFilter:
    """Which recorded conversations to list; every field given must match (None: any).

    `start`/`end` are calendar days in the policy's time zone, both included; `hour` (0-23,
    policy zone) needs both. `outcome` is one of `OUTCOMES` or `open`; `agent` a username
    who wrote in it; `tier`, `complaint_grade`, `complaint`, `sla_missed` (as of the end of
    the range, or now), `has_ticket` and `rating` (the conversation's, else its ticket's)
    look at the linked ticket; `rule_id` a QA finding not overturned; `question` a
    substring of the first question. Raises `QaError` for a bad value.
    """

    start: date | None = None
    end: date | None = None
    channel: str | None = None
    language: str | None = None
    outcome: str | None = None
    agent: str | None = None
    tier: str | None = None
    complaint_grade: str | None = None
    complaint: bool | None = None
    red_card: bool | None = None
    rule_id: str | None = None
    sla_missed: bool | None = None
    handoff: bool | None = None
    has_ticket: bool | None = None
    rating: int | None = None
    rated: bool | None = None
    source: str | None = None
    hour: int | None = None
    question: str | None = None

    def __post_init__(self) -> None:
        choices = {"outcome": (*OUTCOMES, "open"), "tier": TIERS, "complaint_grade": GRADES}
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise QaError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, str) and not 0 < len(value) <= 200:
                raise QaError(f"{item.name} must be 1-200 characters")
        if self.start and self.end and self.end < self.start:
            raise QaError("end must not be before start")
        if self.start and self.end and (self.end - self.start).days >= MAX_DAYS:
            raise QaError(f"a date range spans at most {MAX_DAYS} days")
        if self.rating is not None and not 1 <= self.rating <= 5:
            raise QaError("rating must be 1-5")
        if self.hour is not None and not 0 <= self.hour <= 23:
            raise QaError("hour must be 0-23")
        if self.hour is not None and (self.start is None or self.end is None):
            raise QaError("hour needs a date (or start and end)")

    @classmethod
    def from_query(
        cls,
        params: Mapping[str, str],
        ignore: frozenset[str] = frozenset({"page", "limit", "offset", "format"}),
    ) -> ConversationFilter:
        """A filter from URL query parameters (`date` sets start and end; empty means any).

        Raises:
            QaError: An unknown parameter or a value that does not parse.
        """
        kinds = {item.name: item.type for item in fields(cls)}
        values: dict[str, Any] = {}
        for name, raw in params.items():
            text = raw.strip()
            if name in ignore or not text:
                continue
            if name == "date":
                values["start"] = values["end"] = _parse(name, text, "date")
            elif name in kinds:
                values[name] = _parse(name, text, str(kinds[name]))
            else:
                raise QaError(f"unknown filter {name!r} (known: date, {', '.join(kinds)})")
        return cls(**values)

    def as_query(self) -> dict[str, str]:
        """The filter as URL query parameters (the inverse of `from_query`)."""
        query: dict[str, str] = {}
        for name, value in asdict(self).items():
            if isinstance(value, bool):
                query[name] = "true" if value else "false"
            elif value is not None:
                query[name] = value.isoformat() if isinstance(value, date) else str(value)
        return query


def _parse(name: str, text: str, kind: str) -> Any:
    try:
        if "date" in kind:
            return date.fromisoformat(text)
        if "bool" in kind:
            if text.lower() not in _TRUE | _FALSE:
                raise ValueError(text)
            return text.lower() in _TRUE
        if "int" in kind:
            return int(text)
    except ValueError:
        raise QaError(f"{name}: {text[:40]!r} is not a valid {kind.split(' ')[0]}") from None
    return text


DRILLDOWN: dict[str, dict[str, Any]] = {
    "conversations": {},
    "ended_conversations": {},
    "conversations_by_channel": {"channel": "{key}"},
    "conversations_by_language": {"language": "{key}"},
    "conversations_by_source": {"source": "{key}"},
    "outcomes": {"outcome": "{key}"},
    "self_service_rate": {"outcome": "self_service"},
    "handoff_rate": {"outcome": "handoff"},
    "ticket_rate": {"outcome": "ticket"},
    "first_response_p50_seconds": {"handoff": True},
    "first_response_p90_seconds": {"handoff": True},
    "first_response_by_tier": {"handoff": True, "tier": "{key}"},
    "ticket_first_response_p50_seconds": {"has_ticket": True},
    "ticket_first_response_p90_seconds": {"has_ticket": True},
    "ticket_first_response_by_tier": {"has_ticket": True, "tier": "{key}"},
    "tickets_created": {"has_ticket": True},
    "tickets_resolved": {"has_ticket": True},
    "complaint_tickets": {"complaint": True},
    "resolution_p50_hours": {"has_ticket": True},
    "resolution_p90_hours": {"has_ticket": True},
    "resolution_by_tier": {"has_ticket": True, "tier": "{key}"},
    "sla": {"sla_missed": True},
    "sla_hit_rate": {"sla_missed": True},
    "sla_by_tier": {"tier": "{key}", "sla_missed": True},
    "sla_by_complaint_grade": {"complaint_grade": "{key}", "sla_missed": True},
    "csat_rated": {"rated": True},
    "csat_rateable": {"has_ticket": True},
    "csat_response_rate": {"rated": True},
    "csat_average": {"rated": True},
    "csat_distribution": {"rating": "{key}"},
    "qa_scored_subjects": {},
    "qa_pass_rate": {"red_card": True},
    "qa_bot_average": {},
    "qa_bot": {},
    "qa_agents": {"agent": "{key}"},
    "red_cards": {"red_card": True},
    "red_card_count": {"red_card": True},
    "top_unanswered": {"question": "{key}"},
    "hourly": {"hour": "{key}"},
    "targets.need_accuracy": {"has_ticket": True},
    "targets.record_completeness": {"has_ticket": True},
    "targets.self_service_rate": {"outcome": "self_service"},
    "targets.answer_accuracy": {"outcome": "unresolved"},
    "targets.sla_hit_rate": {"sla_missed": True},
    "targets.csat_response_rate": {"rated": True},
    "targets.satisfaction": {"rated": True},
    "targets.qa_pass_rate": {"red_card": True},
    "targets.complaint_rate": {"complaint": True},
}
"""Figure of `period_metrics` → the `ConversationFilter` fields of the conversations behind it.

`"{key}"` stands for the item's key (a channel, tier, hour, agent username, rating 1-5, or
for `top_unanswered` the question's text); the date range is the report's day. Rates and
SLA figures drill down to the cases that miss (e.g. `sla_by_tier` → that tier's missed
ones). Ticket figures count tickets by creation or resolution time but list the
conversations linked to a ticket, so their totals may differ.
"""


def drilldown_query(figure: str, day: date, key: str | int | None = None) -> dict[str, str]:
    """URL query parameters of the conversations behind `figure` (on `day`, item `key`).

    Raises:
        KeyError: `figure` is not in `DRILLDOWN`.
    """
    query = {"date": day.isoformat()}
    for name, value in DRILLDOWN[figure].items():
        if value == "{key}":
            if key is None:
                continue
            value = key
        query[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return query


def _conditions(
    policy: ServicePolicy, flt: ConversationFilter, now: datetime
) -> list[ColumnElement[bool]]:
    """The SQL conditions of a filter (on conversations outer-joined to their tickets)."""
    started = Conversation.started_at
    where: list[ColumnElement[bool]] = []
    as_of = now
    if flt.start is not None:
        where.append(started >= day_bounds(policy, flt.start)[0])
    if flt.end is not None:
        as_of = min(now, day_bounds(policy, flt.end)[1])
        where.append(started < day_bounds(policy, flt.end)[1])
    if flt.hour is not None and flt.start is not None and flt.end is not None:
        spans = []
        for offset in range((flt.end - flt.start).days + 1):
            day = datetime.combine(flt.start + timedelta(days=offset), time(flt.hour))
            local = day.replace(tzinfo=policy.zone)
            spans.append(and_(started >= local, started < local + timedelta(hours=1)))
        where.append(or_(*spans))
    for name in ("channel", "language", "source"):
        if (value := getattr(flt, name)) is not None:
            where.append(getattr(Conversation, name) == value)
    if flt.outcome is not None:
        where.append(
            Conversation.outcome.is_(None)
            if flt.outcome == "open"
            else Conversation.outcome == flt.outcome
        )
    if flt.agent is not None:
        quoted = '"' + flt.agent.replace('"', "") + '"'
        where.append(cast(Conversation.agents, String).contains(quoted, autoescape=True))
    if flt.tier is not None:
        where.append(Ticket.urgency == UrgencyTier(flt.tier))
    if flt.complaint_grade is not None:
        where.append(Ticket.complaint_grade == ComplaintGrade(flt.complaint_grade))
    rating = func.coalesce(Conversation.rating, Ticket.satisfaction)
    handoff = or_(Conversation.outcome == "handoff", Conversation.handoff_requested_at.is_not(None))
    switches: dict[str, ColumnElement[bool]] = {
        "complaint": Ticket.complaint_grade.is_not(None),
        "red_card": Conversation.red_cards > 0,
        "sla_missed": and_(Ticket.id.is_not(None), sla_missed_clause(as_of)),
        "handoff": handoff,
        "has_ticket": Ticket.id.is_not(None),
        "rated": rating.is_not(None),
    }
    for name, condition in switches.items():
        value = getattr(flt, name)
        if value is not None:
            where.append(condition if value else not_(func.coalesce(condition, False)))
    if flt.rating is not None:
        where.append(rating == flt.rating)
    if flt.rule_id is not None:
        where.append(
            exists().where(
                QaFinding.conversation_pk == Conversation.id,
                QaFinding.rule_id == flt.rule_id,
                QaFinding.appeal_status != "overturned",
            )
        )
    if flt.question is not None:
        where.append(Conversation.first_question.contains(flt.question, autoescape=True))
    return where


def _row(conversation: Conversation, ticket: Any, agent: str | None) -> dict[str, Any]:
    rating = conversation.rating if conversation.rating is not None else ticket.satisfaction
    return {
        "pk": conversation.id,
        "link": conversation_link(conversation.id),
        "conversation_id": conversation.conversation_id,
        "channel": conversation.channel,
        "language": conversation.language,
        "source": conversation.source,
        "started_at": conversation.started_at.isoformat(),
        "ended_at": conversation.ended_at.isoformat() if conversation.ended_at else None,
        "outcome": conversation.outcome,
        "agent": agent,
        "agents": list(conversation.agents or []),
        "tier": ticket.urgency.value if ticket.urgency else None,
        "complaint_grade": ticket.complaint_grade.value if ticket.complaint_grade else None,
        "ticket": ticket.number,
        "first_response_seconds": conversation.first_response_seconds,
        "rating": rating,
        "bot_score": conversation.bot_score,
        "agent_score": conversation.agent_score,
        "red_cards": conversation.red_cards,
        "transfers": conversation.transfers,
        "first_question": conversation.first_question,
    }


def _listing(policy: ServicePolicy, flt: ConversationFilter, now: datetime) -> Any:
    return (
        select(
            Conversation,
            Ticket.number,
            Ticket.urgency,
            Ticket.complaint_grade,
            Ticket.satisfaction,
            Agent.username,
        )
        .outerjoin(Ticket, Ticket.id == Conversation.ticket_id)
        .outerjoin(Agent, Agent.id == Conversation.agent_id)
        .where(*_conditions(policy, flt, now))
    )


def conversation_rows(
    engine: Engine,
    policy: ServicePolicy,
    flt: ConversationFilter,
    limit: int = 100,
    offset: int = 0,
    *,
    now: datetime | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """How many conversations match, and one page of them (newest first) as dicts.

    Agents may only see conversations they wrote in: callers set `flt.agent` for them.
    Raises `QaError` for a limit outside 1..1000 or a negative offset.
    """
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise QaError(f"limit must be 1-{MAX_PAGE} and offset at least 0")
    moment = utc(now, "now") if now is not None else datetime.now(UTC)
    with session_factory(engine)() as session:
        total = session.scalar(
            select(func.count(Conversation.id))
            .outerjoin(Ticket, Ticket.id == Conversation.ticket_id)
            .where(*_conditions(policy, flt, moment))
        )
        rows = session.execute(
            _listing(policy, flt, moment)
            .order_by(Conversation.started_at.desc(), Conversation.id.desc())
            .limit(limit)
            .offset(offset)
        ).all()
    return total or 0, [_row(row[0], row, row.username) for row in rows]


CSV_COLUMNS = (
    "pk", "conversation_id", "channel", "language", "source", "started_at", "ended_at",
    "outcome", "agent", "agents", "tier", "complaint_grade", "ticket",
    "first_response_seconds", "rating", "bot_score", "agent_score", "red_cards", "transfers",
    "first_question", "link",
)  # fmt: skip


def csv_chunks(
    engine: Engine,
    policy: ServicePolicy,
    flt: ConversationFilter,
    *,
    now: datetime | None = None,
    chunk: int = 1000,
) -> Iterator[str]:
    """The matching conversations as CSV text pieces (BOM and header first, oldest first).

    Reads `chunk` rows per query (keyset on the id), so any number streams in bounded memory.
    """
    for text, _ in _csv_pieces(engine, policy, flt, now, chunk):
        yield text


def _csv_pieces(
    engine: Engine,
    policy: ServicePolicy,
    flt: ConversationFilter,
    now: datetime | None,
    chunk: int,
) -> Iterator[tuple[str, int]]:
    moment = utc(now, "now") if now is not None else datetime.now(UTC)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield "\ufeff" + buffer.getvalue(), 0
    last = 0
    sessions = session_factory(engine)
    while True:
        with sessions() as session:
            rows = session.execute(
                _listing(policy, flt, moment)
                .where(Conversation.id > last)
                .order_by(Conversation.id)
                .limit(chunk)
            ).all()
        if not rows:
            return
        buffer.seek(0)
        buffer.truncate()
        for row in rows:
            values = _row(row[0], row, row.username)
            values["agents"] = " ".join(values["agents"])
            writer.writerow(["" if values[name] is None else values[name] for name in CSV_COLUMNS])
        last = rows[-1][0].id
        yield buffer.getvalue(), len(rows)


def write_csv(
    engine: Engine,
    policy: ServicePolicy,
    flt: ConversationFilter,
    stream: TextIO,
    *,
    now: datetime | None = None,
) -> int:
    """Writes the CSV of `csv_chunks` to a text stream (open files with `newline=""`).

    Returns how many conversations it wrote.
    """
    written = 0
    for text, rows in _csv_pieces(engine, policy, flt, now, 1000):
        stream.write(text)
        written += rows
    return written
