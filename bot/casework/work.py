"""`CaseWork`: what agents, supervisors and customers do to a ticket, end to end.

One method per operation (assign, change status with a reason, note, progress update,
resolve with result and improvement measure, reopen; the customer's list, added
information, "it's fixed", reopen; rating and the second follow-up; alerts). Each checks who
may do it (`bot.casework.access`), changes the ticket through `TicketStore`'s session-level
methods (so the SLA clock is kept on every path) and, in the same transaction, enqueues the
messages the change owes (`bot.service.outbox`): the returned `CaseChange` names them, so
the web layer can deliver them at once and the scheduler delivers whatever it could not.
Blocking (SQLAlchemy sessions): async callers run it in a worker thread.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot.casework.access import ASSIGNABLE_ROLES, OVERSEERS
from bot.casework.base import (
    _S,
    CaseChange,
    NoticeList,
    Rows,
    _actor,
    _allowed,
    _enum,
    _text,
)
from bot.casework.customers import CustomerCases
from bot.casework.errors import CaseError, CaseForbidden
from bot.casework.satisfaction import SatisfactionCases
from bot.casework.views import (
    allowed_statuses,
    event_view,
    handoff_view,
    notice_view,
    record_view,
    task_view,
    ticket_row,
)
from bot.core.db import (
    Agent,
    AgentRole,
    ComplaintGrade,
    FollowupTask,
    Handoff,
    HandoffMessage,
    Notice,
    ServiceRecord,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketStatus,
    UrgencyTier,
)
from bot.service import notices
from bot.service.tickets import (
    FINISHED_STATUSES,
    InvalidTransition,
)

_QUEUE = "queue"
_ALL = "all"


class CaseWork(CustomerCases, SatisfactionCases):
    """Ticket operations for the desk, the bot's actions and the CLI (blocking: use a thread).

    `CaseWork(engine, policy, directory=None, *, clock=None)`; `clock` (aware) is for tests.
    """

    # ------------------------------------------------------------------ reading
    def list(
        self,
        viewer: Agent,
        *,
        status: str | None = None,
        tier: str | None = None,
        grade: str | None = None,
        assignee: str | None = None,
        at_risk: bool = False,
        overdue: bool = False,
        now: datetime | None = None,
        limit: int = 200,
    ) -> Rows:
        """The tickets `viewer` may see, soonest due first, filtered.

        `status`: None for the queue (unfinished), "all", or a status value; `tier` an
        urgency value; `grade` a complaint grade value or "none"; `assignee` "me", "none" or
        a username. Raises `CaseError` for a value that is none of these.
        """
        moment = (now or self._now()).astimezone(UTC)
        if not viewer.active or viewer.role not in (OVERSEERS | {AgentRole.agent}):
            return []
        query = select(Ticket)
        if viewer.role is AgentRole.agent:
            query = query.where(or_(Ticket.assignee_id.is_(None), Ticket.assignee_id == viewer.id))
        unfinished = Ticket.status.not_in(list(FINISHED_STATUSES))
        if status in (None, "", _QUEUE):
            query = query.where(unfinished)
        elif status != _ALL:
            query = query.where(Ticket.status == _enum(TicketStatus, status, "status"))
        if tier:
            query = query.where(Ticket.urgency == _enum(UrgencyTier, tier, "tier"))
        if grade == "none":
            query = query.where(Ticket.complaint_grade.is_(None))
        elif grade:
            query = query.where(Ticket.complaint_grade == _enum(ComplaintGrade, grade, "grade"))
        with self._sessions() as session:
            if assignee == "me":
                query = query.where(Ticket.assignee_id == viewer.id)
            elif assignee == "none":
                query = query.where(Ticket.assignee_id.is_(None))
            elif assignee:
                agent_id = session.scalar(select(Agent.id).where(Agent.username == assignee))
                if agent_id is None:
                    raise CaseError(f"No agent is called {assignee!r}.")
                query = query.where(Ticket.assignee_id == agent_id)
            if at_risk:
                query = query.where(
                    Ticket.sla_state == "at_risk", Ticket.due_at >= moment, unfinished
                )
            if overdue:
                query = query.where(Ticket.due_at < moment, unfinished)
            bounded = min(max(limit, 1), 1000)
            tickets = list(session.scalars(query.order_by(Ticket.due_at, Ticket.id).limit(bounded)))
            agents = self._agents(session, tickets)
            return [ticket_row(ticket, agents, moment) for ticket in tickets]

    def detail(self, number: str, viewer: Agent, now: datetime | None = None) -> dict[str, Any]:
        """The ticket page: row view, record, history, linked conversations, notices, tasks."""
        moment = (now or self._now()).astimezone(UTC)
        with self._sessions() as session:
            ticket = self._visible(session, number, viewer)
            agents = self._agents(session, [ticket])
            record = session.get(ServiceRecord, ticket.record_id)
            events = session.scalars(
                select(TicketEvent)
                .where(TicketEvent.ticket_id == ticket.id)
                .order_by(TicketEvent.id)
            )
            handoffs = list(
                session.scalars(
                    select(Handoff).where(Handoff.ticket_id == ticket.id).order_by(Handoff.id)
                )
            )
            linked = []
            for handoff in handoffs:
                messages = list(
                    session.scalars(
                        select(HandoffMessage)
                        .where(HandoffMessage.handoff_id == handoff.id)
                        .order_by(HandoffMessage.created_at, HandoffMessage.id)
                    )
                )
                linked.append(handoff_view(handoff, messages))
            outbox = session.scalars(
                select(Notice).where(Notice.ticket_id == ticket.id).order_by(Notice.id)
            )
            tasks = list(
                session.scalars(
                    select(FollowupTask)
                    .where(FollowupTask.ticket_id == ticket.id)
                    .order_by(FollowupTask.id)
                )
            )
            task_agents = self._task_agents(session, tasks)
            return ticket_row(ticket, agents, moment) | {
                "record": record_view(record),
                "history": [event_view(event) for event in events],
                "handoffs": linked,
                "notices": [notice_view(notice) for notice in outbox],
                "followups": [task_view(t, ticket.number, task_agents, moment) for t in tasks],
                "result": ticket.result,
                "improvement": ticket.improvement,
                "reopen_count": ticket.reopen_count,
                "response_due_at": ticket.response_due_at and ticket.response_due_at.isoformat(),
                "resolution_due_at": ticket.resolution_due_at
                and ticket.resolution_due_at.isoformat(),
                "allowed_statuses": allowed_statuses(ticket.status),
            }

    # ------------------------------------------------------------------ agents' operations
    def assign(self, number: str, username: str, by: Agent, note: str = "") -> CaseChange:
        """Assigns the ticket to `username` ("" unassigns); the assignee's supervisor follows.

        Agents may take an unassigned ticket (assign it to themselves) or release their own;
        supervisors and admins assign to any active agent, supervisor or admin.
        """
        reason = _text(note, "A note", required=False)
        wanted = (username or "").strip()

        def work(session: Session, now: datetime) -> tuple[Ticket, NoticeList]:
            ticket = self._workable(session, number, by)
            if ticket.status is _S.closed:
                raise CaseError(f"Ticket {ticket.number} is closed.")
            target: Agent | None = None
            if wanted:
                target = session.scalars(select(Agent).where(Agent.username == wanted)).first()
                if target is None or not target.active or target.role not in ASSIGNABLE_ROLES:
                    raise CaseError(f"No active agent, supervisor or admin is called {wanted!r}.")
            if by.role not in OVERSEERS:
                taking = target is not None and target.id == by.id and ticket.assignee_id is None
                releasing = target is None and ticket.assignee_id == by.id
                if not (taking or releasing):
                    raise CaseForbidden(
                        "Agents may only take unassigned tickets or release their own."
                    )
            new_id = target.id if target is not None else None
            if new_id == ticket.assignee_id:
                return ticket, []
            ticket.assignee_id = new_id
            if target is not None and target.supervisor_id is not None:
                ticket.supervisor_id = target.supervisor_id
            ticket.updated_at = now
            text = f"assigned to {target.username}" if target else "unassigned"
            self.store.add_event(
                session,
                ticket,
                kind=TicketEventKind.assignment,
                actor=_actor(by),
                at=now,
                note=f"{text}: {reason}" if reason else text,
            )
            return ticket, []

        return self._change(work)

    def set_status(self, number: str, to: str | TicketStatus, reason: str, by: Agent) -> CaseChange:
        """Moves the ticket to `to` with a reason (resolving goes through `resolve`)."""
        why = _text(reason, "A reason")
        target = _enum(TicketStatus, to, "status")
        if target is _S.resolved:
            raise CaseError("Resolve a ticket with its result (resolve), not a status change.")

        def work(session: Session, now: datetime) -> tuple[Ticket, NoticeList]:
            ticket = self._workable(session, number, by)
            if target not in _allowed(ticket.status):
                raise CaseError(str(InvalidTransition(ticket.number, ticket.status, target)))
            self._move(session, ticket, target, _actor(by), now, why)
            return ticket, []

        return self._change(work)

    def add_note(self, number: str, text: str, by: Agent) -> CaseChange:
        """An internal note: agents and supervisors only, never the customer."""
        body = _text(text, "A note")

        def work(session: Session, now: datetime) -> tuple[Ticket, NoticeList]:
            ticket = self._workable(session, number, by)
            self.store.add_event(
                session, ticket, kind=TicketEventKind.note, actor=_actor(by), at=now, note=body
            )
            ticket.updated_at = now
            return ticket, []

        return self._change(work)

    def post_progress(self, number: str, text: str, by: Agent) -> CaseChange:
        """A customer-visible progress update: history, notice, and the next notice in 3 days.

        Counts as the first response. Allowed on every status but closed.
        """
        body = _text(text, "An update")

        def work(session: Session, now: datetime) -> tuple[Ticket, NoticeList]:
            ticket = self._workable(session, number, by)
            if ticket.status is _S.closed:
                raise CaseError(f"Ticket {ticket.number} is closed: reopen it first.")
            self.store.apply_response(session, ticket, now, _actor(by))
            event = self.store.add_event(
                session,
                ticket,
                kind=TicketEventKind.progress,
                actor=_actor(by),
                at=now,
                note=body,
                visible_to_customer=True,
            )
            ticket.last_progress_at = now
            if ticket.status not in FINISHED_STATUSES:
                every = timedelta(days=self.policy.service_loop.progress_every_days)
                ticket.next_progress_at = now + every
            ticket.updated_at = now
            notice = self._customer_notice(
                session,
                ticket,
                key=f"update:{event.id}",
                kind=notices.PROGRESS_UPDATE,
                text=notices.progress_update(ticket.number, body, ticket.language),
                now=now,
            )
            return ticket, [notice] if notice else []

        return self._change(work)

    def resolve(self, number: str, result: str, improvement: str, by: Agent) -> CaseChange:
        """Resolves with a result and improvement measure; the customer hears both at once.

        The result and the satisfaction question are enqueued due now.
        """
        done = _text(result, "A result")
        better = _text(improvement, "An improvement measure", required=False)

        def work(session: Session, now: datetime) -> tuple[Ticket, NoticeList]:
            ticket = self._workable(session, number, by)
            if ticket.status in FINISHED_STATUSES:
                raise CaseError(f"Ticket {ticket.number} is already {ticket.status.value}.")
            actor = _actor(by)
            if _S.resolved not in _allowed(ticket.status):  # pending_agent: take it first
                self._move(session, ticket, _S.in_progress, actor, now, "taken to resolve")
            ticket.result = done
            ticket.improvement = better or None
            self._move(session, ticket, _S.resolved, actor, now, done)
            return ticket, self._result_notices(session, ticket, now)

        return self._change(work)

    def _result_notices(self, session: Session, ticket: Ticket, now: datetime) -> NoticeList:
        loop = self.policy.service_loop
        round_key = f"{ticket.id}:{ticket.reopen_count}"
        written = [
            self._customer_notice(
                session,
                ticket,
                key=f"result:{round_key}",
                kind=notices.RESULT,
                text=notices.result(
                    ticket.number,
                    ticket.result or "",
                    ticket.improvement,
                    ticket.language,
                    loop.reopen_within_days,
                ),
                now=now,
            ),
            self._customer_notice(
                session,
                ticket,
                key=f"csat:{round_key}",
                kind=notices.CSAT,
                text=notices.csat_question(ticket.number, ticket.language),
                now=now,
                buttons=notices.rating_buttons(ticket.language),
                slots={"rating_ticket": ticket.number},
            ),
        ]
        return [notice for notice in written if notice is not None]

    def reopen(self, number: str, reason: str, by: Agent) -> CaseChange:
        """Takes a resolved or closed ticket back to in_progress (a new resolution window)."""
        why = _text(reason, "A reason")

        def work(session: Session, now: datetime) -> tuple[Ticket, NoticeList]:
            ticket = self._workable(session, number, by)
            if ticket.status not in FINISHED_STATUSES:
                raise CaseError(f"Ticket {ticket.number} is {ticket.status.value}, not finished.")
            self._move(session, ticket, _S.in_progress, _actor(by), now, why, reopen=True)
            return ticket, []

        return self._change(work)
