"""The plumbing every part of `CaseWork` shares: sessions, clock, retries, lookups, notices.

`CaseBase` holds the engine's sessions, the policy, the ticket store and the customer
directory; `_change` runs an operation in one transaction (again when the ticket changed
under it) and returns a `CaseChange`. The helpers turn store refusals into `CaseError`s.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bot.casework.access import may_act, may_see
from bot.casework.errors import CaseError, CaseForbidden, CaseNotFound
from bot.casework.views import (
    ticket_row,
)
from bot.core.db import (
    Agent,
    ComplaintGrade,
    FollowupOutcome,
    FollowupTask,
    Notice,
    Ticket,
    TicketStatus,
    UrgencyTier,
    session_factory,
)
from bot.customers.directory import CustomerDirectory
from bot.service.outbox import customer_notice, enqueue
from bot.service.policy import ServicePolicy
from bot.service.tickets import (
    ALLOWED_TRANSITIONS,
    TicketError,
    TicketStore,
    normalize_ticket_number,
)

Rows = list[dict[str, Any]]
"""Views as the desk API returns them."""

_E = TypeVar("_E", TicketStatus, UrgencyTier, ComplaintGrade, FollowupOutcome)

TEXT_LIMIT = 4000
"""The longest note, update, result or reason, in characters."""

_ATTEMPTS = 10
_S = TicketStatus


@dataclass(frozen=True)
class CaseChange:
    """A ticket after an operation (its row view) and the notices the operation enqueued."""

    ticket: dict[str, Any]
    notice_ids: list[int] = field(default_factory=list)


class _Changed(Exception):
    """The ticket changed under the operation: run it again."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _text(value: str, what: str, *, required: bool = True) -> str:
    text = (value or "").strip()
    if required and not text:
        raise CaseError(f"{what} is required.")
    if len(text) > TEXT_LIMIT:
        raise CaseError(f"{what} is longer than {TEXT_LIMIT} characters.")
    return text


def _actor(agent: Agent) -> str:
    return f"agent:{agent.username}"


NoticeList = list[Notice]
"""Notices an operation enqueued."""


class CaseBase:
    """Sessions, policy, store, directory and clock of the case work (blocking)."""

    def __init__(
        self,
        engine: Engine,
        policy: ServicePolicy,
        directory: CustomerDirectory | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._sessions = session_factory(engine)
        self.policy = policy
        self.store = TicketStore(engine, policy)
        self.directory = directory
        self._clock = clock or _utc_now

    # ------------------------------------------------------------------ plumbing
    def _now(self) -> datetime:
        return self._clock().astimezone(UTC)

    def _change(
        self, work: Callable[[Session, datetime], tuple[Ticket, list[Notice]]]
    ) -> CaseChange:
        """Runs `work` in a transaction (again if the ticket changed meanwhile)."""
        for _ in range(_ATTEMPTS):
            now = self._now()
            try:
                with self._sessions.begin() as session:
                    ticket, written = work(session, now)
                    session.flush()
                    view = ticket_row(ticket, self._agents(session, [ticket]), now)
                    ids = [notice.id for notice in written]
            except _Changed:
                continue
            return CaseChange(view, ids)
        raise CaseError("The ticket changed concurrently too often; try again.")

    def _move(
        self,
        session: Session,
        ticket: Ticket,
        to: TicketStatus,
        actor: str,
        now: datetime,
        note: str | None,
        *,
        reopen: bool = False,
    ) -> None:
        try:
            event = self.store.apply_transition(
                session, ticket, to, actor=actor, at=now, note=note, reopen=reopen
            )
        except TicketError as error:
            raise CaseError(str(error)) from error
        if event is None:
            raise _Changed

    @staticmethod
    def _find(session: Session, number: str) -> Ticket | None:
        canonical = normalize_ticket_number(number or "")
        return session.scalars(select(Ticket).where(Ticket.number == canonical)).first()

    def _visible(self, session: Session, number: str, viewer: Agent) -> Ticket:
        ticket = self._find(session, number)
        if ticket is None or not may_see(ticket, viewer):
            raise CaseNotFound(f"No ticket {number!r}.")
        return ticket

    def _workable(self, session: Session, number: str, by: Agent) -> Ticket:
        ticket = self._visible(session, number, by)
        if not may_act(ticket, by):
            raise CaseForbidden(f"You may not change ticket {ticket.number}.")
        return ticket

    @staticmethod
    def _agents(session: Session, tickets: Iterable[Ticket]) -> dict[int, Agent]:
        ids = {i for t in tickets for i in (t.assignee_id, t.supervisor_id) if i is not None}
        if not ids:
            return {}
        return {a.id: a for a in session.scalars(select(Agent).where(Agent.id.in_(ids)))}

    def _customer_notice(
        self,
        session: Session,
        ticket: Ticket,
        *,
        key: str,
        kind: str,
        text: str,
        now: datetime,
        buttons: list[dict[str, str]] | None = None,
        slots: dict[str, Any] | None = None,
    ) -> Notice | None:
        # sent at once, quiet hours or not: a person (the agent working the case, or the
        # customer who just wrote) caused it now; only the scheduler's own notices
        # (progress notices, reminders, check-ins) wait for the morning
        notice = customer_notice(
            ticket, key=key, kind=kind, text=text, due_at=now, buttons=buttons, slots=slots,
            urgent=True,
        )  # fmt: skip
        return enqueue(session, notice, now)

    @staticmethod
    def _task_agents(session: Session, tasks: Iterable[FollowupTask]) -> dict[int, Agent]:
        ids = {task.assignee_id for task in tasks if task.assignee_id is not None}
        if not ids:
            return {}
        return {a.id: a for a in session.scalars(select(Agent).where(Agent.id.in_(ids)))}


def _allowed(status: TicketStatus) -> frozenset[TicketStatus]:
    return ALLOWED_TRANSITIONS[status]


def _enum(kind: type[_E], value: str | _E, what: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise CaseError(f"Unknown {what} {value!r} (one of: {choices}).") from None
