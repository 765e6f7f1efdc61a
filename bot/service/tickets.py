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
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.core.db import ServiceRecord, Ticket, TicketEvent, TicketStatus, session_factory
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

    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)

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
                if found.due_at is not None:
                    ticket.due_at = found.due_at
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
        )
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
            )
        )
        return ticket

    def transition(
        self,
        number: str,
        to: TicketStatus,
        *,
        actor: str,
        note: str | None = None,
        at: datetime | None = None,
    ) -> Ticket:
        """Moves the ticket to status `to` and appends a history event; returns the ticket.

        Raises `TicketNotFound`, or `InvalidTransition` when `ALLOWED_TRANSITIONS` forbids it
        (including a change to the same status). Sets `updated_at`; `resolved_at` is set on
        `resolved` and cleared when a resolved ticket is reopened.
        """
        _check_actor(actor)
        for _ in range(_ATTEMPTS):
            when = _utc(at, "at") if at is not None else _now()
            with self._sessions.begin() as session:
                ticket = self._ticket(session, number)
                current = ticket.status
                if to not in ALLOWED_TRANSITIONS[current]:
                    raise InvalidTransition(ticket.number, current, to)
                values: dict[str, Any] = {"status": to, "updated_at": when}
                if to == TicketStatus.resolved:
                    values["resolved_at"] = when
                elif current == TicketStatus.resolved and to == TicketStatus.in_progress:
                    values["resolved_at"] = None
                result = cast(
                    "CursorResult[Any]",
                    session.execute(
                        update(Ticket)
                        .where(Ticket.id == ticket.id, Ticket.status == current)
                        .values(values)
                        .execution_options(synchronize_session=False)
                    ),
                )
                if result.rowcount != 1:
                    continue  # changed by someone else meanwhile: check again
                session.add(
                    TicketEvent(
                        ticket_id=ticket.id,
                        at=when,
                        from_status=current,
                        to_status=to,
                        actor=actor,
                        note=note,
                    )
                )
                session.flush()
                session.refresh(ticket)
                return ticket
        raise TicketError(f"Ticket {number} changed concurrently too often; try again.")

    def rate(self, number: str, score: int, *, actor: str = "customer") -> Ticket:
        """Stores the customer's satisfaction (1..5) on a resolved or closed ticket.

        Rating again replaces the score; each rating is a history event whose from and to
        status are the ticket's current status.
        """
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise TicketError(f"A satisfaction score is a whole number from 1 to 5, got {score!r}.")
        _check_actor(actor)
        when = _now()
        with self._sessions.begin() as session:
            ticket = self._ticket(session, number)
            if ticket.status not in RATEABLE_STATUSES:
                raise TicketError(
                    f"Ticket {ticket.number} is {ticket.status.value}: "
                    "only resolved or closed tickets can be rated."
                )
            ticket.satisfaction = score
            ticket.updated_at = when
            session.add(
                TicketEvent(
                    ticket_id=ticket.id,
                    at=when,
                    from_status=ticket.status,
                    to_status=ticket.status,
                    actor=actor,
                    note=f"satisfaction {score}/5",
                )
            )
            return ticket

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

    def _ticket(self, session: Session, number: str) -> Ticket:
        ticket = self._find(session, number)
        if ticket is None:
            raise TicketNotFound(f"No ticket has number {number!r}.")
        return ticket

    @staticmethod
    def _ticket_of_record(session: Session, record_id: int) -> Ticket | None:
        return session.scalars(select(Ticket).where(Ticket.record_id == record_id)).first()
