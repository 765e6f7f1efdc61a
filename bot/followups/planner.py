"""Planning: what the service loop owes at a moment, written to the outbox and the desk.

Each pass reads only what is due through an indexed column (`tickets.sla_check_at`,
`tickets.next_progress_at`, `customers.next_checkin_at`, `notices (status, due_at)`,
`followup_tasks (done_at, due_at)`, unique keys), a batch at a time, and changes each row by
compare-and-set on the value it read (`UPDATE … WHERE id = ? AND sla_check_at = <read>`): when
two workers plan at once, one of them changes a ticket and writes its notices and alerts, the
other's update matches nothing and it moves on. Notices and alerts have unique keys besides,
so even a repeated plan stores each once.

Passes:

- **SLA**: `sla_check_at <= now`. Before the due time a ticket in state `ok` becomes `at_risk`
  (warning alert, email to the supervisor, history) and is looked at again at its due time;
  at or after it the ticket is `breached` (critical alert, email, escalated to its supervisor:
  `escalated_at`, history) and the clock stops until an agent's response or a reopen sets a
  new window.
- **Progress**: `next_progress_at <= now`: the automatic progress notice (the latest update
  posted since the last notice, else "still being handled, next step, due time"); the next one
  is due `progress_every_days` later.
- **Result and satisfaction coverage**: a ticket resolved (at least `RESOLVE_GRACE` ago, so
  the resolving path's own notices are in) without its `result:` notice gets one (when it has
  a result, within `result_within_hours`), without its `csat:` notice gets the question
  (within `satisfaction_within_days`): every resolved ticket gets the satisfaction visit.
- **Satisfaction reminder**: a question sent `satisfaction_reminder_after_days` ago and not
  answered gets one reminder, never after `satisfaction_within_days`.
- **Follow-up tasks overdue**: a critical alert for the task's supervisor.
- **Need confirmation when the customer left**: a service record still unconfirmed
  `CONFIRMATION_MARGIN` before its confirmation is due (the customer left before answering
  "is this right?") gets its ticket opened and the customer the need as registered, with the
  ticket number and how to correct it, so the plan's 2-hour confirmation holds and no need is
  lost (`service_records.confirmation_due_at`, indexed).
- **VIP check-in**: VIP customers whose `next_checkin_at` has come get their advisor's
  check-in (key `vip:<customer>:<yyyy-mm>`, one a month) and the next is due
  `vip_checkin_every_days` later. A VIP with no `next_checkin_at` yet (just marked VIP) is due
  at once: the advisor introduces themselves.

Blocking (SQLAlchemy sessions); async callers run it in a thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, String, and_, cast, exists, func, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from bot.core.db import (
    Agent,
    Customer,
    DeskAlert,
    FollowupTask,
    Notice,
    NoticeStatus,
    ServiceRecord,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketStatus,
    session_factory,
)
from bot.service import notices as texts
from bot.service.outbox import (
    CUSTOMER,
    STAFF,
    NewNotice,
    customer_notice,
    enqueue,
    raise_alert,
)
from bot.service.policy import ServicePolicy
from bot.service.tickets import TicketError, TicketStore

logger = logging.getLogger(__name__)

BATCH = 500
"""Rows a pass reads at once."""

RESOLVE_GRACE = timedelta(minutes=10)
"""How long after a resolve the coverage pass waits for the resolving path's own notices."""

ACTOR = "scheduler"
"""Actor of the history entries the planner writes (never counts as an agent's response)."""

FINISHED = (TicketStatus.resolved, TicketStatus.closed)

CONFIRMATION_MARGIN = timedelta(minutes=15)
"""A record still unconfirmed this long before its confirmation is due: the customer left."""
CONFIRMATION_LOOKBACK = timedelta(days=7)
"""Older unconfirmed records are left alone (a new deployment does not open last year's)."""
_MAX_ROUNDS = 10_000


@dataclass
class PlanResult:
    """What one planning run changed, by pass."""

    at_risk: int = 0
    breached: int = 0
    progress_notices: int = 0
    results: int = 0
    csat_questions: int = 0
    csat_reminders: int = 0
    followups_overdue: int = 0
    vip_checkins: int = 0
    unconfirmed_needs: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts as a JSON-able dict."""
        return asdict(self)

    @property
    def total(self) -> int:
        """Changes in all."""
        return sum(self.as_dict().values())


def _key(prefix: str, *parts: Any) -> ColumnElement[str]:
    """`prefix` + parts joined by ':' as a SQL string expression (SQLite and PostgreSQL)."""
    expression: ColumnElement[str] = literal(prefix, String)
    for n, part in enumerate(parts):
        if n:
            expression = expression + literal(":", String)
        expression = expression + cast(part, String)
    return expression


class Planner:
    """Runs the planning passes against one database (blocking)."""

    def __init__(self, engine: Engine, policy: ServicePolicy, batch: int = BATCH) -> None:
        self.policy = policy
        self.batch = batch
        self._sessions: sessionmaker[Session] = session_factory(engine)
        self._tickets_store = TicketStore(engine, policy)

    @property
    def loop(self) -> Any:
        """The policy's service-loop section."""
        return self.policy.service_loop

    # ------------------------------------------------------------------ the run
    def plan(self, now: datetime) -> PlanResult:
        """Runs every pass until nothing more is due at `now`."""
        result = PlanResult()
        passes: list[Callable[[datetime, PlanResult], int]] = [
            self._confirmation_pass,
            self._sla_pass,
            self._progress_pass,
            self._coverage_pass,
            self._reminder_pass,
            self._followup_pass,
            self._vip_pass,
        ]
        for run_pass in passes:
            for _ in range(_MAX_ROUNDS):
                if run_pass(now, result) < self.batch:
                    break
        return result

    def due(self, now: datetime) -> dict[str, int]:
        """How many rows each indexed scan finds due at `now` (read only, for benchmarks)."""
        with self._sessions() as session:
            return {
                "sla": len(self._sla_due(session, now, None)),
                "progress": len(self._progress_due(session, now, None)),
                "vip": len(self._vip_due(session, now, None)),
            }

    # ------------------------------------------------------------------ scans
    @staticmethod
    def _sla_due(session: Session, now: datetime, limit: int | None) -> list[int]:
        query = select(Ticket.id).where(Ticket.sla_check_at <= now).order_by(Ticket.sla_check_at)
        return list(session.scalars(query.limit(limit) if limit else query))

    @staticmethod
    def _progress_due(session: Session, now: datetime, limit: int | None) -> list[int]:
        query = (
            select(Ticket.id)
            .where(Ticket.next_progress_at <= now)
            .order_by(Ticket.next_progress_at)
        )
        return list(session.scalars(query.limit(limit) if limit else query))

    @staticmethod
    def _vip_due(session: Session, now: datetime, limit: int | None) -> list[str]:
        found: list[str] = []
        for condition in (Customer.next_checkin_at <= now, Customer.next_checkin_at.is_(None)):
            query = select(Customer.id).where(condition, Customer.vip.is_(True))
            found += session.scalars(query.limit(limit) if limit else query)
        return found

    def _tickets(self, session: Session, ids: list[int]) -> Iterator[Ticket]:
        yield from session.scalars(select(Ticket).where(Ticket.id.in_(ids)).order_by(Ticket.id))

    # ------------------------------------------------------------------ need confirmation
    @staticmethod
    def _unconfirmed_due(session: Session, now: datetime, limit: int) -> list[int]:
        has_ticket = exists().where(Ticket.record_id == ServiceRecord.id)
        query = (
            select(ServiceRecord.id)
            .where(
                ServiceRecord.confirmation_due_at <= now + CONFIRMATION_MARGIN,
                ServiceRecord.confirmation_due_at > now - CONFIRMATION_LOOKBACK,
                ServiceRecord.confirmed_at.is_(None),
                ServiceRecord.due_at.is_not(None),
                ~has_ticket,
            )
            .order_by(ServiceRecord.confirmation_due_at, ServiceRecord.id)
            .limit(limit)
        )
        return list(session.scalars(query))

    def _confirmation_pass(self, now: datetime, result: PlanResult) -> int:
        with self._sessions() as session:
            ids = self._unconfirmed_due(session, now, self.batch)
        for record_id in ids:  # one transaction each: a concurrent planner's win skips one
            try:
                with self._sessions.begin() as session:
                    self._open_unconfirmed(session, record_id, now, result)
            except (IntegrityError, TicketError) as error:
                logger.info("Record %s left unconfirmed was not opened: %s", record_id, error)
        return len(ids)

    def _open_unconfirmed(
        self, session: Session, record_id: int, now: datetime, result: PlanResult
    ) -> None:
        record = session.get(ServiceRecord, record_id)
        if record is None or record.confirmed_at is not None:
            return
        store = self._tickets_store
        ticket = store.confirm_in(session, record_id, at=now, actor=ACTOR)
        store.add_event(
            session,
            ticket,
            kind=TicketEventKind.status,
            actor=ACTOR,
            at=now,
            note="客户未确认即离开，按记录登记并告知客户 · customer left before confirming: "
            "opened as recorded, customer told",
        )
        text = texts.unconfirmed_need(
            self.policy,
            number=ticket.number,
            summary=ticket.summary,
            due_at=ticket.due_at,
            language=ticket.language,
        )
        notice = customer_notice(
            ticket, key=f"unconfirmed:{record_id}", kind=texts.UNCONFIRMED_NEED, text=text,
            due_at=now,
        )  # fmt: skip
        if enqueue(session, notice, now) is not None:
            result.unconfirmed_needs += 1

    # ------------------------------------------------------------------ SLA
    def _sla_pass(self, now: datetime, result: PlanResult) -> int:
        with self._sessions() as session:
            ids = self._sla_due(session, now, self.batch)
        if not ids:
            return 0
        with self._sessions.begin() as session:
            for ticket in self._tickets(session, ids):
                self._sla_one(session, ticket, now, result)
        return len(ids)

    def _sla_one(self, session: Session, ticket: Ticket, now: datetime, result: PlanResult) -> None:
        read = ticket.sla_check_at
        if read is None or read > now:
            return
        cas = and_(Ticket.id == ticket.id, Ticket.sla_check_at == read)
        if ticket.status in FINISHED:
            session.execute(_cas(cas, sla_check_at=None))
            return
        due, responded = ticket.due_at, ticket.first_responded_at is not None
        due_iso = due.isoformat()
        supervisor = session.get(Agent, ticket.supervisor_id) if ticket.supervisor_id else None
        if now >= due:
            values: dict[str, Any] = {"sla_state": "breached", "sla_check_at": None}
            if ticket.sla_state != "breached":
                values |= {"escalated_at": now, "updated_at": now}
            if session.execute(_cas(cas, **values)).rowcount != 1:  # type: ignore[attr-defined]
                return
            if ticket.sla_state == "breached":
                return
            to = supervisor.display_name if supervisor is not None else None
            text = texts.sla_breach(
                self.policy,
                number=ticket.number,
                due_at=due,
                summary=ticket.summary,
                responded=responded,
                escalated_to=to,
            )
            kind, severity = texts.SLA_BREACH, "critical"
            note = f"SLA breached; escalated to {to or 'the supervisors'}"
            result.breached += 1
        elif ticket.sla_state == "ok":
            values = {"sla_state": "at_risk", "sla_check_at": due, "updated_at": now}
            if session.execute(_cas(cas, **values)).rowcount != 1:  # type: ignore[attr-defined]
                return
            text = texts.sla_at_risk(
                self.policy,
                number=ticket.number,
                due_at=due,
                summary=ticket.summary,
                responded=responded,
            )
            kind, severity, note = texts.SLA_AT_RISK, "warning", "SLA at risk"
            result.at_risk += 1
        else:  # already warned about this window: look again when it is due
            session.execute(_cas(cas, sla_check_at=due))
            return
        key = f"{kind}:{ticket.id}:{due_iso}"
        raise_alert(
            session, key=key, kind=kind, severity=severity, text=text, now=now, ticket_id=ticket.id
        )
        if supervisor is not None:
            enqueue(
                session,
                NewNotice(
                    key=key,
                    kind=kind,
                    audience=STAFF,
                    text=text,
                    due_at=now,
                    ticket_id=ticket.id,
                    recipient_agent_id=supervisor.id,
                ),
                now,
            )
        _event(session, ticket, now, TicketEventKind.sla, f"{note} (due {due_iso})")

    # ------------------------------------------------------------------ progress
    def _progress_pass(self, now: datetime, result: PlanResult) -> int:
        with self._sessions() as session:
            ids = self._progress_due(session, now, self.batch)
        if not ids:
            return 0
        every = timedelta(days=self.loop.progress_every_days)
        with self._sessions.begin() as session:
            for ticket in self._tickets(session, ids):
                read = ticket.next_progress_at
                if read is None or read > now:
                    continue
                cas = and_(Ticket.id == ticket.id, Ticket.next_progress_at == read)
                if ticket.status in FINISHED:
                    session.execute(_cas(cas, next_progress_at=None))
                    continue
                latest = self._latest_update(session, ticket)
                changed = session.execute(
                    _cas(cas, next_progress_at=now + every, last_progress_at=now)
                )
                if changed.rowcount != 1:  # type: ignore[attr-defined]
                    continue
                text = texts.progress_notice(
                    self.policy,
                    number=ticket.number,
                    status=ticket.status,
                    due_at=ticket.due_at,
                    language=ticket.language,
                    latest_update=latest,
                )
                notice = customer_notice(
                    ticket,
                    key=f"progress:{ticket.id}:{read.isoformat()}",
                    kind=texts.PROGRESS_NOTICE,
                    text=text,
                    due_at=now,
                )
                if enqueue(session, notice, now) is not None:
                    result.progress_notices += 1
        return len(ids)

    @staticmethod
    def _latest_update(session: Session, ticket: Ticket) -> str | None:
        """The newest customer-visible update posted since the customer last heard."""
        since = ticket.last_progress_at or ticket.created_at
        return session.scalar(
            select(TicketEvent.note)
            .where(
                TicketEvent.ticket_id == ticket.id,
                TicketEvent.kind == TicketEventKind.progress,
                TicketEvent.visible_to_customer.is_(True),
                TicketEvent.at > since,
            )
            .order_by(TicketEvent.at.desc(), TicketEvent.id.desc())
            .limit(1)
        )

    # ------------------------------------------------------------------ result and CSAT
    def _coverage_pass(self, now: datetime, result: PlanResult) -> int:
        result_since = now - timedelta(hours=self.loop.result_within_hours)
        csat_since = now - timedelta(days=self.loop.satisfaction_within_days)
        result_key = _key("result:", Ticket.id, Ticket.reopen_count)
        csat_key = _key("csat:", Ticket.id, Ticket.reopen_count)
        missing_result = and_(
            Ticket.result.is_not(None),
            Ticket.resolved_at >= result_since,
            ~exists().where(Notice.key == result_key),
        )
        missing_csat = and_(
            Ticket.satisfaction.is_(None),
            Ticket.resolved_at >= csat_since,
            ~exists().where(Notice.key == csat_key),
        )
        with self._sessions() as session:
            ids = list(
                session.scalars(
                    select(Ticket.id)
                    .where(
                        Ticket.status.in_(FINISHED),
                        Ticket.resolved_at <= now - RESOLVE_GRACE,
                        Ticket.resolved_at >= min(result_since, csat_since),
                        or_(missing_result, missing_csat),
                    )
                    .order_by(Ticket.id)
                    .limit(self.batch)
                )
            )
        if not ids:
            return 0
        with self._sessions.begin() as session:
            for ticket in self._tickets(session, ids):
                round_ = f"{ticket.id}:{ticket.reopen_count}"
                resolved_at = ticket.resolved_at or now
                if ticket.result and resolved_at >= result_since:
                    text = texts.result(
                        ticket.number,
                        ticket.result,
                        ticket.improvement,
                        ticket.language,
                        self.loop.reopen_within_days,
                    )
                    notice = customer_notice(
                        ticket, key=f"result:{round_}", kind=texts.RESULT, text=text, due_at=now
                    )
                    if enqueue(session, notice, now) is not None:
                        result.results += 1
                if ticket.satisfaction is None and resolved_at >= csat_since:
                    notice = customer_notice(
                        ticket,
                        key=f"csat:{round_}",
                        kind=texts.CSAT,
                        text=texts.csat_question(ticket.number, ticket.language),
                        buttons=texts.rating_buttons(ticket.language),
                        slots={"rating_ticket": ticket.number},
                        due_at=now,
                    )
                    if enqueue(session, notice, now) is not None:
                        result.csat_questions += 1
        return len(ids)

    def _reminder_pass(self, now: datetime, result: PlanResult) -> int:
        within = now - timedelta(days=self.loop.satisfaction_within_days)
        asked_before = now - timedelta(days=self.loop.satisfaction_reminder_after_days)
        reminder = aliased(Notice)
        reminder_key = literal("csat_reminder:", String) + func.substr(Notice.key, 6)
        with self._sessions() as session:
            rows = session.execute(
                select(Notice.ticket_id, Notice.key)
                .join(Ticket, Ticket.id == Notice.ticket_id)
                .where(
                    Notice.status == NoticeStatus.sent,
                    Notice.due_at >= within,
                    Notice.kind == texts.CSAT,
                    Notice.sent_at <= asked_before,
                    Ticket.status.in_(FINISHED),
                    Ticket.satisfaction.is_(None),
                    Ticket.resolved_at >= within,
                    ~exists().where(reminder.key == reminder_key),
                )
                .order_by(Notice.id)
                .limit(self.batch)
            ).all()
        if not rows:
            return 0
        with self._sessions.begin() as session:
            for ticket_id, key in rows:
                ticket = session.get(Ticket, ticket_id)
                if ticket is None:
                    continue
                notice = customer_notice(
                    ticket,
                    key="csat_reminder:" + key.removeprefix("csat:"),
                    kind=texts.CSAT_REMINDER,
                    text=texts.csat_reminder(ticket.number, ticket.language),
                    buttons=texts.rating_buttons(ticket.language),
                    slots={"rating_ticket": ticket.number},
                    due_at=now,
                )
                if enqueue(session, notice, now) is not None:
                    result.csat_reminders += 1
        return len(rows)

    # ------------------------------------------------------------------ follow-up tasks
    def _followup_pass(self, now: datetime, result: PlanResult) -> int:
        alert_key = _key("followup_overdue:", FollowupTask.id)
        with self._sessions() as session:
            rows = session.execute(
                select(FollowupTask, Ticket.number)
                .join(Ticket, Ticket.id == FollowupTask.ticket_id)
                .where(
                    FollowupTask.done_at.is_(None),
                    FollowupTask.due_at <= now,
                    ~exists().where(DeskAlert.key == alert_key),
                )
                .order_by(FollowupTask.id)
                .limit(self.batch)
            ).all()
        if not rows:
            return 0
        with self._sessions.begin() as session:
            for task, number in rows:
                text = (
                    f"二次回访已逾期：工单 {number}（满意度 {task.score}/5）尚未记录回访结果。"
                    f" / Second follow-up overdue: ticket {number} (rated {task.score}/5)"
                    " has no recorded outcome."
                )
                alert = raise_alert(
                    session,
                    key=f"followup_overdue:{task.id}",
                    kind="followup_overdue",
                    severity="critical",
                    text=text,
                    now=now,
                    ticket_id=task.ticket_id,
                    agent_id=task.assignee_id,
                )
                if alert is not None:
                    result.followups_overdue += 1
        return len(rows)

    # ------------------------------------------------------------------ VIP
    def _vip_pass(self, now: datetime, result: PlanResult) -> int:
        with self._sessions() as session:
            ids = self._vip_due(session, now, self.batch)
        if not ids:
            return 0
        every = timedelta(days=self.loop.vip_checkin_every_days)
        month = now.astimezone(self.policy.zone).strftime("%Y-%m")
        with self._sessions.begin() as session:
            for customer in session.scalars(select(Customer).where(Customer.id.in_(ids))):
                read = customer.next_checkin_at
                if not customer.vip or (read is not None and read > now):
                    continue
                same = (
                    Customer.next_checkin_at.is_(None)
                    if read is None
                    else Customer.next_checkin_at == read
                )
                changed = session.execute(
                    update(Customer)
                    .where(Customer.id == customer.id, same)
                    .values(next_checkin_at=now + every)
                    .execution_options(synchronize_session=False)
                )
                if changed.rowcount != 1:  # type: ignore[attr-defined]
                    continue
                advisor = session.get(Agent, customer.advisor_id) if customer.advisor_id else None
                language = customer.language or "zh"
                text = texts.vip_checkin(
                    language, advisor.display_name if advisor else None, customer.name
                )
                notice = NewNotice(
                    key=f"vip:{customer.id}:{month}",
                    kind=texts.VIP_CHECKIN,
                    audience=CUSTOMER,
                    text=text,
                    due_at=now,
                    language=language,
                    conversation_id=customer.id,
                    channel=customer.channel,
                )
                if enqueue(session, notice, now) is not None:
                    result.vip_checkins += 1
        return len(ids)


def _cas(condition: ColumnElement[bool], **values: Any) -> Any:
    """`UPDATE tickets SET … WHERE <condition>` without touching loaded objects."""
    return (
        update(Ticket)
        .where(condition)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def _event(
    session: Session, ticket: Ticket, now: datetime, kind: TicketEventKind, note: str
) -> None:
    """A history entry that leaves the status as it is."""
    session.add(
        TicketEvent(
            ticket_id=ticket.id,
            at=now,
            from_status=ticket.status,
            to_status=ticket.status,
            actor=ACTOR,
            note=note,
            kind=kind,
            visible_to_customer=False,
        )
    )


def plan(engine: Engine, policy: ServicePolicy, now: datetime, batch: int = BATCH) -> PlanResult:
    """Runs every planning pass at `now` (see the module docstring)."""
    return Planner(engine, policy, batch).plan(now)
