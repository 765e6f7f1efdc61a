"""Service records and tickets: store a record, open its ticket on confirmation, track its status.

`TicketStore` is blocking (SQLAlchemy sessions): async callers run it in a worker thread.

Datetimes: every datetime the store takes must be timezone-aware (any zone; naive ones raise
`TicketError`), and every datetime it returns is aware UTC. The tables hold naive UTC, like
the other Kefu tables (`bot.core.db.models.UtcDateTime`).

Ticket numbers are `TK` + the UTC date of creation (yyyymmdd) + a 4-digit daily sequence.
Concurrent writers on one database are safe: a number (or a second ticket for one record)
taken by another writer meanwhile violates a unique constraint, and the store tries again.
Status changes are compare-and-set on the current status, so concurrent changes never write
a history event whose `from_status` is stale.

The SLA clock is kept here, on every path that changes a ticket (desk, handoff desk, CLI,
actions): confirming fills the response and resolution due times, the first at-risk check
and the first progress notice; a human agent's first move or update is the first response
(`due_at` becomes the resolution due time); resolving or closing stops the clock and cancels
pending progress notices; reopening starts a new resolution window. The session-level
methods (`apply_transition`, `apply_response`, `apply_rating`, `add_event`) let callers such
as `bot.casework` change a ticket and enqueue its notices in one transaction.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.core.db import (
    Agent,
    Notice,
    NoticeStatus,
    ServiceRecord,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketStatus,
    session_factory,
)
from bot.service import sla
from bot.service.notices import PROGRESS_NOTICE
from bot.service.policy import ServicePolicy, load_policy
from bot.service.records import RecordDraft, completeness

TICKET_NUMBER = re.compile(r"^TK\d{12}$")
"""Ticket numbers: `TK`, the UTC creation date (yyyymmdd) and a 4-digit daily sequence."""

SUMMARY_LENGTH = 120
"""The longest `Ticket.summary`, in characters."""

_S = TicketStatus
ALLOWED_TRANSITIONS: dict[TicketStatus, frozenset[TicketStatus]] = {
    _S.open: frozenset({_S.pending_agent, _S.in_progress, _S.resolved, _S.closed}),
    _S.pending_agent: frozenset({_S.in_progress, _S.open, _S.closed}),
    _S.in_progress: frozenset({_S.waiting_customer, _S.pending_agent, _S.open, _S.resolved}),
    _S.waiting_customer: frozenset({_S.in_progress, _S.resolved, _S.closed}),
    _S.resolved: frozenset({_S.closed, _S.in_progress}),
    _S.closed: frozenset(),
}
"""Where a ticket may go from each status (resolved -> in_progress reopens it;
in_progress -> open is an agent handing the conversation back to the bot)."""

FIRST_STATUSES = frozenset({_S.open, _S.pending_agent})
"""What a ticket may start as: open, or pending_agent when the bot hands over at once."""

RATEABLE_STATUSES = frozenset({_S.resolved, _S.closed})
"""Only finished tickets take a satisfaction score."""

FINISHED_STATUSES = frozenset({_S.resolved, _S.closed})
"""Tickets whose SLA clock and progress notices have stopped."""

REOPENABLE_STATUSES = frozenset({_S.resolved, _S.closed})
"""What `transition(..., reopen=True)` takes back to in_progress."""

RESPONSE_STATUSES = frozenset({_S.in_progress, _S.waiting_customer, _S.resolved})
"""A human agent moving a ticket here is the ticket's first response."""

NON_HUMAN_ACTORS = frozenset({"bot", "customer", "system", "scheduler"})
"""Actors (or `<actor>:…` prefixes) whose changes never count as an agent's response."""

_ATTEMPTS = 20
_LIMITS = {
    "customer_id": 128,
    "channel": 40,
    "language": 8,
    "category": 40,
    "order_number": 20,
    "need_payoff": 20,
    "email": 254,
}


class TicketError(ValueError):
    """A record or ticket operation was refused; the message says why."""


class TicketNotFound(TicketError):
    """No ticket has this number."""


class RecordNotFound(TicketError):
    """No service record has this id."""


class InvalidTransition(TicketError):
    """The ticket's status may not change to the one asked for."""

    def __init__(self, number: str, from_status: TicketStatus, to_status: TicketStatus) -> None:
        self.number = number
        self.from_status = from_status
        self.to_status = to_status
        allowed = ", ".join(sorted(s.value for s in ALLOWED_TRANSITIONS[from_status])) or "none"
        super().__init__(
            f"Ticket {number} cannot go from {from_status.value} to {to_status.value} "
            f"(allowed from {from_status.value}: {allowed})."
        )


def normalize_ticket_number(text: str) -> str:
    """The canonical form of a ticket number as typed: upper case, without blanks or dashes."""
    return re.sub(r"[\s\-]", "", text).upper()


def summary_line(record: ServiceRecord) -> str:
    """One line for ticket lists: category, product/order and problem, at most 120 characters."""
    order = f"({record.order_number})" if record.order_number else None
    subject = " ".join(part for part in (record.product, order) if part)
    parts = (record.category, subject, record.problem)
    text = " · ".join(part for part in parts if part and part.strip())
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_LENGTH else text[: SUMMARY_LENGTH - 1] + "…"


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise TicketError(
            f"{name} must be a timezone-aware datetime, got naive {value.isoformat()}."
        )
    return value.astimezone(timezone.utc)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def is_human_actor(actor: str) -> bool:
    """Whether the actor is a person on the desk ('agent:li', 'li'), not the bot or customer."""
    return actor.strip().lower().split(":", 1)[0] not in NON_HUMAN_ACTORS


def _check_actor(actor: str) -> None:
    if not actor.strip() or len(actor) > 64:
        raise TicketError(
            f"An actor is 1 to 64 characters ('bot', 'customer', 'agent:<name>'), got {actor!r}."
        )


def _record_values(draft: RecordDraft, created_at: datetime) -> dict[str, Any]:
    for name, limit in _LIMITS.items():
        value = getattr(draft, name)
        if value is not None and len(value) > limit:
            raise TicketError(f"{name} is longer than {limit} characters: {value[:40]!r}...")
    if draft.correction_rounds < 0:
        raise TicketError(f"correction_rounds cannot be negative, got {draft.correction_rounds}.")
    product = draft.product
    if product is not None and len(product) > 120:
        product = product[:119] + "…"
    confirmation_due_at = draft.confirmation_due_at
    due_at = draft.due_at
    stored = replace(
        draft,
        product=product,
        created_at=_utc(created_at, "created_at"),
        confirmation_due_at=None
        if confirmation_due_at is None
        else _utc(confirmation_due_at, "confirmation_due_at"),
        due_at=None if due_at is None else _utc(due_at, "due_at"),
    )
    return {
        "customer_id": stored.customer_id,
        "channel": stored.channel,
        "language": stored.language,
        "category": stored.category,
        "order_number": stored.order_number,
        "product": stored.product,
        "situation": stored.situation,
        "problem": stored.problem,
        "problem_since": stored.problem_since,
        "implication": stored.implication,
        "impacts": list(stored.impacts),
        "need_payoff": stored.need_payoff,
        "need_points": list(stored.need_points),
        "preferences": dict(stored.preferences),
        "special_requests": list(stored.special_requests),
        "skipped": list(stored.skipped),
        "urgency": stored.urgency,
        "complaint_grade": stored.complaint_grade,
        "classification_reasons": list(stored.classification_reasons),
        "correction_rounds": stored.correction_rounds,
        "completeness": completeness(stored),
        "created_at": stored.created_at,
        "confirmation_due_at": stored.confirmation_due_at,
        "due_at": stored.due_at,
        "email": stored.email,
    }


class TicketStore:
    """Writes and reads service records, tickets and ticket history (blocking: use a thread)."""

    def __init__(self, engine: Engine, policy: ServicePolicy | None = None) -> None:
        self._sessions = session_factory(engine)
        self._policy = policy

    @property
    def policy(self) -> ServicePolicy:
        """The service policy the SLA clock follows (the shipped file unless one was given)."""
        if self._policy is None:
            self._policy = load_policy()
        return self._policy

    # records

    def save_record(self, draft: RecordDraft, record_id: int | None = None) -> int:
        """Stores a new record (`record_id` None) or overwrites one (a correction); returns its id.

        Computes `completeness`; a draft without `created_at` gets the current time (a new
        record) or keeps the stored one (an update). Updating a confirmed record also refreshes
        its ticket's summary, urgency, complaint grade and due time.
        """
        with self._sessions.begin() as session:
            if record_id is None:
                record = ServiceRecord(**_record_values(draft, draft.created_at or _now()))
                session.add(record)
                session.flush()
                return record.id
            found = session.get(ServiceRecord, record_id)
            if found is None:
                raise RecordNotFound(f"No service record has id {record_id}.")
            if found.customer_id != draft.customer_id:
                raise TicketError(
                    f"Service record {record_id} is not a record of customer {draft.customer_id!r}."
                )
            for name, value in _record_values(draft, draft.created_at or found.created_at).items():
                setattr(found, name, value)
            ticket = self._ticket_of_record(session, record_id)
            if ticket is not None:
                ticket.summary = summary_line(found)
                ticket.urgency = found.urgency
                ticket.complaint_grade = found.complaint_grade
                if found.due_at is not None and ticket.first_responded_at is None:
                    # Not answered yet: the corrected need's response window applies. After
                    # the first response the clock is the resolution window: left alone.
                    self._set_response_window(ticket, found.due_at)
                ticket.updated_at = _now()
            return found.id

    def get_record(self, record_id: int) -> ServiceRecord | None:
        """The record with this id, or None."""
        with self._sessions() as session:
            return session.get(ServiceRecord, record_id)

    # tickets

    def confirm(
        self,
        record_id: int,
        *,
        at: datetime,
        actor: str = "customer",
        status: TicketStatus = TicketStatus.open,
    ) -> Ticket:
        """Marks the record confirmed and opens its ticket with a first history event.

        `status` is `open`, or `pending_agent` when the bot hands over at once. Idempotent:
        a record that already has a ticket returns that ticket unchanged. Raises
        `RecordNotFound`, or `TicketError` when the record has no `due_at`.
        """
        when = _utc(at, "at")
        _check_actor(actor)
        if status not in FIRST_STATUSES:
            raise TicketError(f"A new ticket is open or pending_agent, not {status.value}.")
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with self._sessions.begin() as session:
                    return self._confirm(session, record_id, when, actor, status)
            except IntegrityError:
                # Another writer took the number (or confirmed the record) meanwhile.
                time.sleep(random.uniform(0, 0.005 * attempt))  # noqa: S311 (jitter only)
        raise TicketError(
            f"Could not open a ticket for record {record_id}: too many concurrent writers."
        )

    def _confirm(
        self, session: Session, record_id: int, when: datetime, actor: str, status: TicketStatus
    ) -> Ticket:
        record = session.get(ServiceRecord, record_id)
        if record is None:
            raise RecordNotFound(f"No service record has id {record_id}.")
        existing = self._ticket_of_record(session, record_id)
        if existing is not None:
            return existing
        if record.due_at is None:
            raise TicketError(f"Service record {record_id} has no due time: set due_at first.")
        if record.confirmed_at is None:
            record.confirmed_at = when
            session.flush()  # on SQLite this takes the write lock before the number is chosen
        prefix = f"TK{when:%Y%m%d}"
        last = session.scalar(
            select(func.max(Ticket.number)).where(Ticket.number.like(f"{prefix}%"))
        )
        sequence = int(last[len(prefix) :]) + 1 if last else 1
        if sequence > 9999:
            raise TicketError(f"The daily ticket sequence of {when:%Y-%m-%d} is exhausted (9999).")
        loop = self.policy.service_loop
        supervisor_id = (
            session.scalar(
                select(Agent.id).where(
                    Agent.username == loop.default_supervisor, Agent.active.is_(True)
                )
            )
            if loop.default_supervisor
            else None
        )
        ticket = Ticket(
            number=f"{prefix}{sequence:04d}",
            record_id=record.id,
            customer_id=record.customer_id,
            channel=record.channel,
            language=record.language,
            status=status,
            urgency=record.urgency,
            complaint_grade=record.complaint_grade,
            due_at=record.due_at,
            created_at=when,
            updated_at=when,
            resolved_at=None,
            satisfaction=None,
            summary=summary_line(record),
            first_responded_at=None,
            sla_state="ok",
            escalated_at=None,
            assignee_id=None,
            supervisor_id=supervisor_id,
            last_progress_at=None,
            next_progress_at=when + timedelta(days=loop.progress_every_days),
            reopen_count=0,
        )
        self._set_response_window(ticket, record.due_at)
        session.add(ticket)
        session.flush()
        session.add(
            TicketEvent(
                ticket_id=ticket.id,
                at=when,
                from_status=None,
                to_status=status,
                actor=actor,
                note=f"service record {record.id} confirmed",
                kind=TicketEventKind.status,
            )
        )
        return ticket

    def _set_response_window(self, ticket: Ticket, response_due: datetime) -> None:
        """Response and resolution due times of a ticket no agent has answered yet."""
        ticket.response_due_at = response_due
        ticket.resolution_due_at = sla.resolution_due_at(
            self.policy, ticket.urgency, ticket.complaint_grade, ticket.created_at, response_due
        )
        ticket.due_at = response_due
        if ticket.status not in FINISHED_STATUSES and ticket.sla_state == "ok":
            ticket.sla_check_at = sla.at_risk_moment(self.policy, ticket.created_at, response_due)

    def resolution_due(self, ticket: Ticket) -> datetime:
        """The ticket's resolution due time (computed for tickets older than the SLA clock)."""
        if ticket.resolution_due_at is not None:
            return ticket.resolution_due_at
        return sla.resolution_due_at(
            self.policy,
            ticket.urgency,
            ticket.complaint_grade,
            ticket.created_at,
            ticket.response_due_at or ticket.due_at,
        )

    def transition(
        self,
        number: str,
        to: TicketStatus,
        *,
        actor: str,
        note: str | None = None,
        at: datetime | None = None,
        reopen: bool = False,
    ) -> Ticket:
        """Moves the ticket to status `to` and appends a history event; returns the ticket.

        Raises `TicketNotFound`, or `InvalidTransition` when `ALLOWED_TRANSITIONS` forbids it
        (including a change to the same status). `reopen=True` takes a resolved or closed
        ticket back to in_progress (closed ones only this way). Keeps the SLA clock: see
        `apply_transition`.
        """
        _check_actor(actor)
        for _ in range(_ATTEMPTS):
            when = _utc(at, "at") if at is not None else _now()
            with self._sessions.begin() as session:
                ticket = self._ticket(session, number)
                event = self.apply_transition(
                    session, ticket, to, actor=actor, at=when, note=note, reopen=reopen
                )
                if event is None:
                    continue  # changed by someone else meanwhile: check again
                return ticket
        raise TicketError(f"Ticket {number} changed concurrently too often; try again.")

    def apply_transition(
        self,
        session: Session,
        ticket: Ticket,
        to: TicketStatus,
        *,
        actor: str,
        at: datetime,
        note: str | None = None,
        reopen: bool = False,
    ) -> TicketEvent | None:
        """`transition` inside the caller's transaction; None when the status changed meanwhile.

        Compare-and-set on the ticket's current status. Bookkeeping: resolved sets
        `resolved_at`, closed `closed_at`, and both stop the clock (`sla_check_at`,
        `next_progress_at` None) and cancel pending progress notices; resolved or closed ->
        in_progress is a reopen (`reopen_count` + 1, a new resolution window from `at`); a
        human actor moving the ticket to in_progress, waiting_customer or resolved is its
        first response (`apply_response`).
        """
        _check_actor(actor)
        when = _utc(at, "at")
        current = ticket.status
        reopening = current in REOPENABLE_STATUSES and to == _S.in_progress
        if reopen and not reopening:
            raise TicketError(
                f"Ticket {ticket.number} is {current.value}: only resolved or closed tickets "
                "are reopened (to in_progress)."
            )
        if not reopen and to not in ALLOWED_TRANSITIONS[current]:
            raise InvalidTransition(ticket.number, current, to)
        status_values: dict[str, Any] = {"status": to, "updated_at": when}
        loop = self.policy.service_loop
        if to in FINISHED_STATUSES:
            status_values[("resolved_at" if to == _S.resolved else "closed_at")] = when
            status_values.update(sla_check_at=None, next_progress_at=None)
        elif reopening:
            due = when + timedelta(
                hours=loop.resolution_hours.hours(ticket.urgency, ticket.complaint_grade)
            )
            status_values.update(
                reopen_count=ticket.reopen_count + 1,
                resolved_at=None,
                closed_at=None,
                resolution_due_at=due,
                due_at=due,
                sla_state="ok",
                sla_check_at=sla.at_risk_moment(self.policy, when, due),
                next_progress_at=when + timedelta(days=loop.progress_every_days),
                escalated_at=None,
            )
        response_values: dict[str, Any] = {}
        if to in RESPONSE_STATUSES and is_human_actor(actor):
            resolution = status_values.get("resolution_due_at") or self.resolution_due(ticket)
            response_values = self._response_values(ticket, when, resolution, to)
        result = cast(
            "CursorResult[Any]",
            session.execute(
                update(Ticket)
                .where(Ticket.id == ticket.id, Ticket.status == current)
                .values({**response_values, **status_values})
                .execution_options(synchronize_session=False)
            ),
        )
        if result.rowcount != 1:
            return None
        if to in FINISHED_STATUSES:
            self._cancel_progress_notices(session, ticket.id)
        event = TicketEvent(
            ticket_id=ticket.id,
            at=when,
            from_status=current,
            to_status=to,
            actor=actor,
            note=note,
            kind=TicketEventKind.status,
            visible_to_customer=False,
        )
        session.add(event)
        session.flush()
        session.refresh(ticket)
        return event

    def _response_values(
        self, ticket: Ticket, when: datetime, resolution_due: datetime, status: TicketStatus
    ) -> dict[str, Any]:
        """What a first response changes (nothing when the ticket was answered before)."""
        if ticket.first_responded_at is not None:
            return {}
        values: dict[str, Any] = {"first_responded_at": when}
        if status not in FINISHED_STATUSES:
            # The clock now runs on the resolution window; the scheduler raises at-risk and
            # breach alerts from `sla_check_at` (at once when that moment has passed).
            values.update(
                due_at=resolution_due,
                resolution_due_at=resolution_due,
                sla_state="ok",
                sla_check_at=sla.at_risk_moment(self.policy, ticket.created_at, resolution_due),
            )
        return values

    def mark_responded(self, number: str, at: datetime, actor: str) -> Ticket:
        """Records an agent's first response (the handoff desk's claim or reply); idempotent.

        Bot and customer actors never count; a ticket answered before is left unchanged.
        """
        _check_actor(actor)
        when = _utc(at, "at")
        with self._sessions.begin() as session:
            ticket = self._ticket(session, number)
            self.apply_response(session, ticket, when, actor)
            return ticket

    def apply_response(self, session: Session, ticket: Ticket, at: datetime, actor: str) -> bool:
        """`mark_responded` inside the caller's transaction; whether this was the first response."""
        if not is_human_actor(actor) or ticket.first_responded_at is not None:
            return False
        when = _utc(at, "at")
        values = self._response_values(ticket, when, self.resolution_due(ticket), ticket.status)
        result = cast(
            "CursorResult[Any]",
            session.execute(
                update(Ticket)
                .where(
                    Ticket.id == ticket.id,
                    Ticket.first_responded_at.is_(None),
                    Ticket.status == ticket.status,
                )
                .values(values)
                .execution_options(synchronize_session=False)
            ),
        )
        session.flush()
        session.refresh(ticket)
        return result.rowcount == 1

    @staticmethod
    def _cancel_progress_notices(session: Session, ticket_id: int) -> None:
        session.execute(
            update(Notice)
            .where(
                Notice.ticket_id == ticket_id,
                Notice.kind == PROGRESS_NOTICE,
                Notice.status == NoticeStatus.pending,
            )
            .values(status=NoticeStatus.cancelled)
            .execution_options(synchronize_session=False)
        )

    def add_event(
        self,
        session: Session,
        ticket: Ticket,
        *,
        kind: TicketEventKind,
        actor: str,
        at: datetime,
        note: str | None,
        visible_to_customer: bool = False,
    ) -> TicketEvent:
        """Appends a history entry that does not change the status (from = to = current)."""
        _check_actor(actor)
        event = TicketEvent(
            ticket_id=ticket.id,
            at=_utc(at, "at"),
            from_status=ticket.status,
            to_status=ticket.status,
            actor=actor,
            note=note,
            kind=kind,
            visible_to_customer=visible_to_customer,
        )
        session.add(event)
        session.flush()
        return event

    def record_event(
        self,
        number: str,
        *,
        kind: TicketEventKind,
        actor: str,
        note: str | None,
        at: datetime | None = None,
        visible_to_customer: bool = False,
    ) -> TicketEvent:
        """`add_event` in a transaction of its own (a waiting customer's message, a note)."""
        when = _utc(at, "at") if at is not None else _now()
        with self._sessions.begin() as session:
            ticket = self._ticket(session, number)
            ticket.updated_at = when
            return self.add_event(
                session,
                ticket,
                kind=kind,
                actor=actor,
                note=note,
                at=when,
                visible_to_customer=visible_to_customer,
            )

    def rate(self, number: str, score: int, *, actor: str = "customer") -> Ticket:
        """Stores the customer's satisfaction (1..5) on a resolved or closed ticket.

        Rating again replaces the score; each rating is a history event whose from and to
        status are the ticket's current status.
        """
        with self._sessions.begin() as session:
            ticket = self._ticket(session, number)
            self.apply_rating(session, ticket, score, actor=actor, at=_now())
            return ticket

    def apply_rating(
        self, session: Session, ticket: Ticket, score: int, *, actor: str, at: datetime
    ) -> TicketEvent:
        """`rate` inside the caller's transaction; raises `TicketError` for a bad score/status."""
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise TicketError(f"A satisfaction score is a whole number from 1 to 5, got {score!r}.")
        _check_actor(actor)
        if ticket.status not in RATEABLE_STATUSES:
            raise TicketError(
                f"Ticket {ticket.number} is {ticket.status.value}: "
                "only resolved or closed tickets can be rated."
            )
        when = _utc(at, "at")
        ticket.satisfaction = score
        ticket.updated_at = when
        return self.add_event(
            session,
            ticket,
            kind=TicketEventKind.rating,
            actor=actor,
            note=f"satisfaction {score}/5",
            at=when,
        )

    def find(self, number: str) -> Ticket | None:
        """The ticket with this number (any case, blanks ignored), or None."""
        with self._sessions() as session:
            return self._find(session, number)

    def for_customer(self, customer_id: str, limit: int = 5) -> list[Ticket]:
        """The customer's newest tickets first, at most `limit`."""
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(Ticket)
                    .where(Ticket.customer_id == customer_id)
                    .order_by(Ticket.created_at.desc(), Ticket.id.desc())
                    .limit(max(limit, 0))
                )
            )

    def queue(
        self,
        *,
        status: TicketStatus | None = None,
        due_before: datetime | None = None,
        limit: int = 50,
    ) -> list[Ticket]:
        """Unfinished tickets (or those in `status`), soonest due first.

        `due_before` keeps the ones due before that moment (overdue: pass the current time).
        """
        query = select(Ticket)
        if status is not None:
            query = query.where(Ticket.status == status)
        else:
            query = query.where(Ticket.status.not_in([_S.resolved, _S.closed]))
        if due_before is not None:
            query = query.where(Ticket.due_at < _utc(due_before, "due_before"))
        with self._sessions() as session:
            return list(
                session.scalars(query.order_by(Ticket.due_at, Ticket.id).limit(max(limit, 0)))
            )

    def record_completeness(self) -> tuple[int, float]:
        """How many service records there are and their mean completeness (0 when none)."""
        with self._sessions() as session:
            count, mean = session.execute(
                select(func.count(ServiceRecord.id), func.avg(ServiceRecord.completeness))
            ).one()
        return int(count), float(mean or 0.0)

    def history(self, number: str) -> list[TicketEvent]:
        """The ticket's events in the order they happened; `TicketNotFound` for an unknown number.

        Ordered by insertion (each change holds the ticket's row while it writes its event),
        not by `at`, which concurrent writers may compute out of order.
        """
        with self._sessions() as session:
            ticket = self._ticket(session, number)
            return list(
                session.scalars(
                    select(TicketEvent)
                    .where(TicketEvent.ticket_id == ticket.id)
                    .order_by(TicketEvent.id)
                )
            )

    @staticmethod
    def _find(session: Session, number: str) -> Ticket | None:
        canonical = normalize_ticket_number(number)
        return session.scalars(select(Ticket).where(Ticket.number == canonical)).first()

    def confirm_in(
        self,
        session: Session,
        record_id: int,
        *,
        at: datetime,
        actor: str,
        status: TicketStatus = TicketStatus.open,
    ) -> Ticket:
        """`confirm` inside the caller's transaction, one attempt.

        A concurrent writer's ticket number or confirmation surfaces as `IntegrityError`.
        """
        return self._confirm(session, record_id, _utc(at, "at"), actor, status)

    def ticket_in(self, session: Session, number: str) -> Ticket:
        """The ticket with this number in the caller's session; `TicketNotFound` if none."""
        return self._ticket(session, number)

    def _ticket(self, session: Session, number: str) -> Ticket:
        ticket = self._find(session, number)
        if ticket is None:
            raise TicketNotFound(f"No ticket has number {number!r}.")
        return ticket

    @staticmethod
    def _ticket_of_record(session: Session, record_id: int) -> Ticket | None:
        return session.scalars(select(Ticket).where(Ticket.record_id == record_id)).first()
