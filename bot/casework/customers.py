"""The customer's side of a case: "my tickets", added information, "it's fixed", reopen.

The caller is the customer's sender id; a ticket of another customer (no identity of the
caller's account, `CustomerDirectory.same_customer`) is reported as not found.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.casework.base import (
    _S,
    CaseBase,
    CaseChange,
    NoticeList,
    Rows,
    _text,
)
from bot.casework.errors import CaseError, CaseNotFound
from bot.core.db import (
    Ticket,
    TicketEventKind,
)
from bot.service import notices
from bot.service.outbox import raise_alert
from bot.service.sla import format_due
from bot.service.tickets import (
    FINISHED_STATUSES,
)


class CustomerCases(CaseBase):
    """What customers do to their tickets (through the bot)."""

    # ------------------------------------------------------------------ customers' operations
    def _owned(self, session: Session, number: str, customer_id: str) -> Ticket:
        ticket = self._find(session, number)
        if ticket is None or not self._same_customer(ticket.customer_id, customer_id):
            raise CaseNotFound(f"No ticket {number!r} of yours.")
        return ticket

    def _same_customer(self, owner: str, caller: str) -> bool:
        if owner == caller:
            return True
        return self.directory is not None and self.directory.same_customer(owner, caller)

    def _reopenable(self, ticket: Ticket, now: datetime) -> bool:
        days = self.policy.service_loop.reopen_within_days
        return (
            ticket.status in FINISHED_STATUSES
            and ticket.resolved_at is not None
            and now <= ticket.resolved_at + timedelta(days=days)
        )

    def customer_tickets(
        self, customer_id: str, limit: int = 5, *, now: datetime | None = None
    ) -> Rows:
        """The caller's newest tickets (every linked identity): status, next step, actions."""
        moment = (now or self._now()).astimezone(UTC)
        identities = self.directory.identities_of(customer_id) if self.directory else [customer_id]
        with self._sessions() as session:
            tickets = session.scalars(
                select(Ticket)
                .where(Ticket.customer_id.in_(identities))
                .order_by(Ticket.created_at.desc(), Ticket.id.desc())
                .limit(min(max(limit, 0), 50))
            )
            return [self._customer_view(ticket, moment) for ticket in tickets]

    def _customer_view(self, ticket: Ticket, now: datetime) -> dict[str, Any]:
        language = ticket.language
        actions = []
        if ticket.status not in FINISHED_STATUSES:
            actions.append("add_info")
        if ticket.status is _S.resolved:
            actions.append("confirm")
        if self._reopenable(ticket, now):
            actions.append("reopen")
        finished = ticket.status in FINISHED_STATUSES
        return {
            "number": ticket.number,
            "status": notices.status_label(ticket.status, language),
            "status_code": ticket.status.value,
            "next_step": notices.next_step(ticket.status, language),
            "due": None if finished else format_due(self.policy, ticket.due_at, language),
            "due_at": ticket.due_at.isoformat(),
            "summary": ticket.summary,
            "language": language,
            "line": notices.status_line(
                self.policy,
                number=ticket.number,
                status=ticket.status,
                due_at=ticket.due_at,
                summary=ticket.summary,
                language=language,
            ),
            "actions": actions,
        }

    def customer_add_info(self, number: str, customer_id: str, text: str) -> CaseChange:
        """The customer adds information to an unfinished ticket.

        A visible history entry; a ticket waiting for the customer goes back to in_progress;
        an info alert for the assignee.
        """
        body = _text(text, "The information")

        def work(session: Session, now: datetime) -> tuple[Ticket, NoticeList]:
            ticket = self._owned(session, number, customer_id)
            if ticket.status in FINISHED_STATUSES:
                raise CaseError(
                    f"Ticket {ticket.number} is {ticket.status.value}: reopen it to add more."
                )
            event = self.store.add_event(
                session,
                ticket,
                kind=TicketEventKind.customer,
                actor="customer",
                at=now,
                note=body,
                visible_to_customer=True,
            )
            if ticket.status is _S.waiting_customer:
                self._move(session, ticket, _S.in_progress, "customer", now, "information added")
            ticket.updated_at = now
            raise_alert(
                session,
                key=f"customer_info:{event.id}",
                kind="customer_message",
                severity="info",
                text=f"客户补充了信息 / The customer added information ({ticket.number}): "
                f"{body[:200]}",
                now=now,
                ticket_id=ticket.id,
                agent_id=ticket.assignee_id,
            )
            return ticket, []

        return self._change(work)

    def customer_confirm_fixed(self, number: str, customer_id: str) -> CaseChange:
        """The customer confirms the fix: resolved -> closed."""

        def work(session: Session, now: datetime) -> tuple[Ticket, NoticeList]:
            ticket = self._owned(session, number, customer_id)
            if ticket.status is not _S.resolved:
                raise CaseError(
                    f"Ticket {ticket.number} is {ticket.status.value}: only a resolved ticket "
                    "can be confirmed fixed."
                )
            self._move(session, ticket, _S.closed, "customer", now, "confirmed fixed")
            return ticket, []

        return self._change(work)

    def customer_reopen(self, number: str, customer_id: str, reason: str) -> CaseChange:
        """The customer reopens a resolved or closed ticket within `reopen_within_days`."""
        why = _text(reason, "A reason", required=False) or "reopened by the customer"
        days = self.policy.service_loop.reopen_within_days

        def work(session: Session, now: datetime) -> tuple[Ticket, NoticeList]:
            ticket = self._owned(session, number, customer_id)
            if ticket.status not in FINISHED_STATUSES:
                raise CaseError(f"Ticket {ticket.number} is still open: no need to reopen it.")
            if not self._reopenable(ticket, now):
                raise CaseError(
                    f"Ticket {ticket.number} can only be reopened within {days:g} days of being "
                    "resolved; please describe the problem again to open a new ticket."
                )
            self._move(session, ticket, _S.in_progress, "customer", now, why, reopen=True)
            raise_alert(
                session,
                key=f"reopened:{ticket.id}:{ticket.reopen_count}",
                kind="reopened",
                severity="warning",
                text=f"客户重新打开了工单 / The customer reopened ticket {ticket.number}: "
                f"{why[:200]}",
                now=now,
                ticket_id=ticket.id,
                agent_id=ticket.assignee_id,
            )
            return ticket, []

        return self._change(work)
