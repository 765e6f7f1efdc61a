"""The weekly review list: what went wrong most last week, turned into owned, dated actions.

`build_weekly` ranks the week's problems (QA rules by findings, SLA misses by urgency tier,
unhappy customers, unanswered questions, conversations passed between agents), makes the
top ones `ReviewAction`s (key `<week start>:<problem>`: building again updates their counts
and keeps what people changed: owner, due date, status, note) and writes `weekly.html` and
`weekly.json`. Owners: the supervisor of the agents concerned (else the policy's
`default_supervisor`); a knowledge editor for the bot's and the knowledge base's problems.

`ReviewList` is the desk's view: overseers (supervisors, admins) see and change every item
and add their own; an item's owner sees it and may change its status and note.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from bot.core.db import (
    Agent,
    AgentRole,
    Conversation,
    QaFinding,
    ReviewAction,
    Ticket,
    session_factory,
)
from bot.core.settings import Settings
from bot.service.policy import ServicePolicy, load_policy
from bot.supervision.errors import QaError, QaForbidden, QaNotFound
from bot.supervision.metrics import day_bounds, period_metrics, policy_today
from bot.supervision.report import desk_base, record_run, render_page, write_file, write_json
from bot.supervision.tallies import TIERS, conversation_link, sla_missed_clause

STATUSES = ("open", "doing", "done", "dropped")
"""Where an item stands."""
OVERSEERS = frozenset({AgentRole.supervisor, AgentRole.admin})
"""Roles that see and change every item (`bot.casework.OVERSEERS`)."""
TOP_PROBLEMS = 8
"""How many of the week's problems become items."""
EXAMPLES = 5
TIER_NAMES = {"urgent": "紧急 urgent", "normal": "普通 normal", "consultation": "咨询 consultation"}


@dataclass
class Problem:
    """One kind of problem of the week: how often, where, and who was involved."""

    problem: str
    title: str
    detail: str = ""
    occurrences: int = 0
    examples: list[int] = field(default_factory=list)
    agents: Counter[str] = field(default_factory=Counter)
    knowledge: bool = False
    """The bot's or the knowledge base's problem: an editor owns it."""


def _now() -> datetime:
    return datetime.now(UTC)


def week_bounds(policy: ServicePolicy, week_start: date) -> tuple[datetime, datetime]:
    """UTC start and end of the 7 days from `week_start` (policy zone)."""
    return day_bounds(policy, week_start)[0], day_bounds(policy, week_start + timedelta(7))[0]


def _names(counts: Counter[str], limit: int = 5) -> str:
    return "、".join(f"{name} ×{n}" for name, n in counts.most_common(limit))


# --------------------------------------------------------------------------- problems
def week_problems(
    engine: Engine,
    policy: ServicePolicy,
    week_start: date,
    now: datetime,
    figures: dict[str, Any] | None = None,
) -> list[Problem]:
    """Every problem of the week with at least one occurrence, most frequent first.

    `figures` is the week's `period_metrics` if already computed (its unanswered questions).
    """
    start, end = week_bounds(policy, week_start)
    if figures is None:
        figures = period_metrics(engine, policy, start, end, now=now)
    with session_factory(engine)() as session:
        return _problems(session, policy, start, end, now, figures)


def _problems(
    session: Session,
    policy: ServicePolicy,
    start: datetime,
    end: datetime,
    now: datetime,
    figures: dict[str, Any],
) -> list[Problem]:
    in_week = (Conversation.started_at >= start, Conversation.started_at < end)
    problems: dict[str, Problem] = {}
    rows = session.execute(
        select(QaFinding.rule_id, QaFinding.title, QaFinding.subject_key, QaFinding.conversation_pk)
        .join(Conversation, Conversation.id == QaFinding.conversation_pk)
        .where(*in_week, QaFinding.appeal_status != "overturned")
        .order_by(QaFinding.conversation_pk)
    ).all()
    for rule_id, title, subject, pk in rows:
        found = problems.setdefault(f"qa:{rule_id}", Problem(f"qa:{rule_id}", f"质检 QA: {title}"))
        found.occurrences += 1
        found.agents[subject.removeprefix("agent:") if subject != "bot" else "bot"] += 1
        if pk not in found.examples and len(found.examples) < EXAMPLES:
            found.examples.append(pk)
    for found in problems.values():
        found.knowledge = set(found.agents) == {"bot"}
        found.detail = f"{found.occurrences} 次 findings: {_names(found.agents)}"
    as_of = min(now, end)
    missed = session.execute(
        select(Ticket.id, Ticket.urgency)
        .where(Ticket.created_at >= start, Ticket.created_at < end, sla_missed_clause(as_of))
        .order_by(Ticket.id)
    ).all()
    for tier in TIERS:
        ids = [ticket_id for ticket_id, urgency in missed if urgency.value == tier]
        if ids:
            key = f"sla_missed:{tier}"
            problems[key] = Problem(
                key,
                f"SLA 超时 SLA missed: {TIER_NAMES[tier]}",
                f"{len(ids)} 张工单超时 tickets missed their response or resolution time",
                len(ids),
                _conversations_of(session, ids),
            )
    unhappy = session.execute(
        select(Conversation.id, Conversation.agents)
        .outerjoin(Ticket, Ticket.id == Conversation.ticket_id)
        .where(
            *in_week,
            func.coalesce(Conversation.rating, Ticket.satisfaction)
            <= policy.service_loop.unhappy_score,
        )
        .order_by(Conversation.id)
    ).all()
    if unhappy:
        agents = Counter(name for _, names in unhappy for name in names or [])
        problems["low_csat"] = Problem(
            "low_csat",
            f"低满意度 Low satisfaction (≤ {policy.service_loop.unhappy_score}★)",
            f"{len(unhappy)} 位客户不满意 unhappy customers"
            + (f"; 坐席 agents: {_names(agents)}" if agents else ""),
            len(unhappy),
            [pk for pk, _ in unhappy[:EXAMPLES]],
            agents,
        )
    questions = figures["top_unanswered"]
    if questions:
        unresolved = session.scalars(
            select(Conversation.id)
            .where(*in_week, Conversation.outcome == "unresolved")
            .order_by(Conversation.id)
            .limit(EXAMPLES)
        ).all()
        problems["unanswered"] = Problem(
            "unanswered",
            "未解答问题 Unanswered questions",
            "; ".join(f"{q['question'][:40]} ×{q['count']}" for q in questions[:5]),
            sum(q["count"] for q in questions),
            list(unresolved),
            knowledge=True,
        )
    passed = session.execute(
        select(Conversation.id, Conversation.agents)
        .where(*in_week, Conversation.transfers >= 2)
        .order_by(Conversation.id)
    ).all()
    if passed:
        agents = Counter(name for _, names in passed for name in names or [])
        problems["transfers"] = Problem(
            "transfers",
            "多次转接 Passed between agents (≥ 2 transfers)",
            f"{len(passed)} 个会话 conversations; 坐席 agents: {_names(agents)}",
            len(passed),
            [pk for pk, _ in passed[:EXAMPLES]],
            agents,
        )
    return sorted(problems.values(), key=lambda p: (-p.occurrences, p.problem))


def _conversations_of(session: Session, ticket_ids: list[int]) -> list[int]:
    return list(
        session.scalars(
            select(Conversation.id)
            .where(Conversation.ticket_id.in_(ticket_ids[:200]))
            .order_by(Conversation.id)
            .limit(EXAMPLES)
        )
    )


def _owner(people: Sequence[Any], policy: ServicePolicy, problem: Problem) -> int | None:
    """The account responsible for a problem (see the module docstring)."""
    if problem.knowledge:
        editors: list[tuple[str, int]] = sorted(
            (p.username, p.id) for p in people if p.role is AgentRole.editor
        )
        if editors:
            return editors[0][1]
    leads: Counter[int] = Counter()
    for person in people:
        if person.username in problem.agents and person.supervisor_id is not None:
            leads[person.supervisor_id] += problem.agents[person.username]
    if leads:
        return leads.most_common(1)[0][0]
    default = policy.service_loop.default_supervisor
    named: list[int] = [p.id for p in people if p.username == default]
    if named:
        return named[0]
    overseers: list[tuple[str, int]] = sorted(
        (p.username, p.id) for p in people if p.role in OVERSEERS
    )
    return overseers[0][1] if overseers else None


def build_weekly(
    settings: Settings,
    engine: Engine,
    policy: ServicePolicy,
    week_start: date,
    out_dir: Path,
    now: datetime,
) -> Path:
    """Builds the review list of the week from `week_start` (a Monday); returns weekly.html.

    Idempotent: the same week's problems update their items, never duplicate them.
    Raises ValueError when `week_start` is not a Monday.
    """
    if week_start.weekday() != 0:
        raise ValueError(f"a week starts on a Monday; {week_start} is not one")
    due = week_start + timedelta(days=6 + policy.supervision.review_item_due_days)
    start, end = week_bounds(policy, week_start)
    summary = period_metrics(engine, policy, start, end, now=now)
    problems = week_problems(engine, policy, week_start, now, summary)
    with session_factory(engine).begin() as session:
        people = session.execute(
            select(Agent.id, Agent.username, Agent.role, Agent.supervisor_id).where(
                Agent.active.is_(True)
            )
        ).all()
        for problem in problems[:TOP_PROBLEMS]:
            key = f"{week_start.isoformat()}:{problem.problem}"
            item = session.scalars(select(ReviewAction).where(ReviewAction.key == key)).first()
            if item is None:
                item = ReviewAction(key=key, week_start=week_start, problem=problem.problem,
                                    owner_id=_owner(people, policy, problem), due_on=due,
                                    status="open", created_at=now, updated_by="kefu")  # fmt: skip
                session.add(item)
            item.title, item.detail = problem.title[:200], problem.detail
            item.occurrences, item.examples = problem.occurrences, problem.examples
            item.updated_at = now
    listing = ReviewList(engine, policy, clock=lambda: now)
    items = listing.week(week_start)
    data = {
        "week_start": week_start.isoformat(),
        "week_end": (week_start + timedelta(days=6)).isoformat(),
        "built_at": now.isoformat(),
        "summary": {key: summary[key] for key in SUMMARY},
        "targets": summary["targets"],
        "problems": [_problem_dict(p) for p in problems],
        "items": items,
    }
    write_json(out_dir / "weekly.json", data)
    page = render_page(
        "weekly_review.html",
        w=data,
        desk=desk_base(settings, None),
        built=now.astimezone(policy.zone).strftime("%Y-%m-%d %H:%M"),
    )
    path = out_dir / "weekly.html"
    write_file(path, page)
    record_run(engine, "weekly", week_start.isoformat(), path, now)
    return path


SUMMARY = (
    "conversations", "self_service_rate", "handoff_rate", "first_response_p50_seconds",
    "sla_hit_rate", "csat_average", "qa_pass_rate", "red_card_count",
)  # fmt: skip


def _problem_dict(problem: Problem) -> dict[str, Any]:
    return {
        "problem": problem.problem,
        "title": problem.title,
        "detail": problem.detail,
        "occurrences": problem.occurrences,
        "examples": problem.examples,
        "agents": dict(problem.agents),
    }


# --------------------------------------------------------------------------- the desk's view
class ReviewList:
    """The review lists as the desk shows and edits them (blocking; call from a thread)."""

    def __init__(
        self,
        engine: Engine,
        policy: ServicePolicy | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._sessions = session_factory(engine)
        self._policy = policy
        self._clock = clock

    @property
    def policy(self) -> ServicePolicy:
        """The service policy (the shipped one unless given)."""
        if self._policy is None:
            self._policy = load_policy()
        return self._policy

    def _today(self) -> date:
        return policy_today(self.policy, self._clock())

    def week(self, week_start: date) -> list[dict[str, Any]]:
        """Every item of a week, as an overseer sees them (the report's list)."""
        with self._sessions() as session:
            rows = self._select(session, week_start=week_start)
            return [self._dict(session, item, None) for item in rows]

    def items(
        self, viewer: Agent, week_start: date | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        """The items `viewer` may see, newest week first: overseers all, others their own.

        Raises `QaForbidden` for an inactive account, `QaError` for an unknown status.
        """
        self._active(viewer)
        wanted = _status(status) if status is not None else None
        with self._sessions() as session:
            owner = None if viewer.role in OVERSEERS else viewer.id
            rows = self._select(session, week_start=week_start, status=wanted, owner=owner)
            return [self._dict(session, item, viewer) for item in rows]

    def update(
        self,
        viewer: Agent,
        item_id: int,
        *,
        owner: str | None = None,
        due_on: date | str | None = None,
        status: str | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        """Changes what is given: overseers anything, the owner status and note only.

        `owner=""` leaves the item without an owner. Raises `QaNotFound` (no such item),
        `QaForbidden` (not allowed) or `QaError` (a bad value).
        """
        self._active(viewer)
        now = self._clock()
        with self._sessions.begin() as session:
            item = session.get(ReviewAction, item_id)
            if item is None:
                raise QaNotFound(f"No review item {item_id}.")
            if viewer.role not in OVERSEERS:
                if item.owner_id != viewer.id:
                    raise QaForbidden("Only supervisors and the item's owner may change it.")
                if owner is not None or due_on is not None:
                    raise QaForbidden("Only supervisors change an item's owner or due date.")
            if owner is not None:
                item.owner_id = _account(session, owner) if owner.strip() else None
            if due_on is not None:
                item.due_on = _day(due_on)
            if status is not None:
                item.status = _status(status)
                item.done_at = (item.done_at or now) if item.status == "done" else None
            if note is not None:
                if len(note) > 2000:
                    raise QaError("A note has at most 2000 characters.")
                item.note = note.strip() or None
            item.updated_at, item.updated_by = now, viewer.username
            session.flush()
            return self._dict(session, item, viewer)

    def add(
        self,
        viewer: Agent,
        title: str,
        detail: str,
        owner: str | None,
        due_on: date | str,
        *,
        week_start: date | None = None,
    ) -> dict[str, Any]:
        """An item a supervisor adds (problem `manual`; default: this week's list).

        Raises `QaForbidden` for anyone but overseers, `QaError` for a bad value.
        """
        self._active(viewer)
        if viewer.role not in OVERSEERS:
            raise QaForbidden("Only supervisors and admins add review items.")
        title, detail = title.strip(), detail.strip()
        if not 1 <= len(title) <= 200 or len(detail) > 4000:
            raise QaError("The title needs 1-200 characters, the detail at most 4000.")
        today = self._today()
        week = week_start or today - timedelta(days=today.weekday())
        now = self._clock()
        with self._sessions.begin() as session:
            item = ReviewAction(
                key=f"{week.isoformat()}:manual:{secrets.token_hex(4)}",
                week_start=week, problem="manual", title=title, detail=detail,
                occurrences=0, examples=[],
                owner_id=_account(session, owner) if owner and owner.strip() else None,
                due_on=_day(due_on), status="open", created_at=now, updated_at=now,
                updated_by=viewer.username,
            )  # fmt: skip
            session.add(item)
            session.flush()
            return self._dict(session, item, viewer)

    # ----------------------------------------------------------------------- helpers
    @staticmethod
    def _active(viewer: Agent) -> None:
        if not viewer.active:
            raise QaForbidden("This account is disabled.")

    @staticmethod
    def _select(
        session: Session,
        *,
        week_start: date | None = None,
        status: str | None = None,
        owner: int | None = None,
    ) -> list[ReviewAction]:
        query = select(ReviewAction)
        if week_start is not None:
            query = query.where(ReviewAction.week_start == week_start)
        if status is not None:
            query = query.where(ReviewAction.status == status)
        if owner is not None:
            query = query.where(ReviewAction.owner_id == owner)
        order = {name: rank for rank, name in enumerate(STATUSES)}
        rows = session.scalars(
            query.order_by(ReviewAction.week_start.desc(), ReviewAction.id).limit(500)
        ).all()
        return sorted(rows, key=lambda r: (-r.week_start.toordinal(), order.get(r.status, 9),
                                           -r.occurrences, r.id))  # fmt: skip

    def _dict(self, session: Session, item: ReviewAction, viewer: Agent | None) -> dict[str, Any]:
        owner = session.get(Agent, item.owner_id) if item.owner_id is not None else None
        if viewer is None or viewer.role in OVERSEERS:
            editable = "all"
        elif owner is not None and owner.id == viewer.id:
            editable = "status"
        else:
            editable = "none"
        return {
            "id": item.id,
            "key": item.key,
            "week_start": item.week_start.isoformat(),
            "problem": item.problem,
            "title": item.title,
            "detail": item.detail,
            "occurrences": item.occurrences,
            "examples": [{"pk": pk, "link": conversation_link(pk)} for pk in item.examples or []],
            "owner": owner.username if owner else None,
            "owner_name": owner.display_name if owner else None,
            "due_on": item.due_on.isoformat(),
            "status": item.status,
            "note": item.note,
            "created_at": item.created_at.isoformat(),
            "updated_at": item.updated_at.isoformat(),
            "updated_by": item.updated_by,
            "done_at": item.done_at.isoformat() if item.done_at else None,
            "overdue": item.status in ("open", "doing") and item.due_on < self._today(),
            "editable": editable,
        }


def _status(value: Any) -> str:
    text = str(getattr(value, "value", value))
    if text not in STATUSES:
        raise QaError(f"status must be one of {', '.join(STATUSES)}, got {text[:20]!r}")
    return text


def _day(value: date | str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise QaError(f"{str(value)[:20]!r} is not a date like 2026-12-14") from None


def _account(session: Session, username: str) -> int:
    found = session.scalars(
        select(Agent.id).where(
            func.lower(Agent.username) == username.strip().lower(), Agent.active.is_(True)
        )
    ).first()
    if found is None:
        raise QaError(f"No active desk account {username.strip()[:40]!r}.")
    return found


__all__ = ["STATUSES", "Problem", "ReviewList", "build_weekly", "week_bounds", "week_problems"]
