"""Satisfaction and supervision: ratings, second follow-ups and desk alerts.

A score at or below the policy's `unhappy_score` opens one follow-up task per ticket and
rating round for the ticket's supervisor (due within `second_followup_hours`), with a desk
alert, an email notice to the supervisor and a notice telling the customer.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from bot.casework.access import OVERSEERS
from bot.casework.base import (
    CaseBase,
    CaseChange,
    NoticeList,
    Rows,
    _actor,
    _enum,
    _text,
)
from bot.casework.errors import CaseError, CaseForbidden, CaseNotFound
from bot.casework.views import (
    alert_view,
    task_view,
)
from bot.core.db import (
    Agent,
    AgentRole,
    DeskAlert,
    FollowupOutcome,
    FollowupTask,
    Notice,
    Ticket,
    TicketEventKind,
)
from bot.service import notices
from bot.service.outbox import STAFF, NewNotice, enqueue, raise_alert
from bot.service.tickets import (
    TicketError,
)


class SatisfactionCases(CaseBase):
    """Ratings, second follow-up tasks and desk alerts."""

    # ------------------------------------------------------------------ satisfaction
    def rate(
        self, number: str, score: int, actor: str = "customer", *, now: datetime | None = None
    ) -> CaseChange:
        """Stores the score; at or below `unhappy_score` opens the second follow-up.

        The supervisor's task, alert and email notice, and a notice to the customer.
        """
        loop = self.policy.service_loop

        def work(session: Session, at: datetime) -> tuple[Ticket, NoticeList]:
            moment = (now or at).astimezone(UTC)
            ticket = self._find(session, number)
            if ticket is None:
                raise CaseNotFound(f"No ticket {number!r}.")
            try:
                self.store.apply_rating(session, ticket, score, actor=actor, at=moment)
            except TicketError as error:
                raise CaseError(str(error)) from error
            if score > loop.unhappy_score:
                return ticket, []
            return ticket, self._open_followup(session, ticket, score, moment)

        return self._change(work)

    def _open_followup(
        self, session: Session, ticket: Ticket, score: int, now: datetime
    ) -> NoticeList:
        loop = self.policy.service_loop
        key = f"followup:{ticket.id}:{ticket.reopen_count}"
        if session.scalar(select(FollowupTask.id).where(FollowupTask.key == key)) is not None:
            return []  # rated again in this round: one follow-up is enough
        due = now + timedelta(hours=loop.second_followup_hours)
        task = FollowupTask(
            key=key,
            ticket_id=ticket.id,
            score=score,
            assignee_id=ticket.supervisor_id,
            due_at=due,
            created_at=now,
        )
        session.add(task)
        session.flush()
        staff_text = notices.followup_task(
            self.policy, number=ticket.number, score=score, due_at=due, summary=ticket.summary
        )
        raise_alert(
            session,
            key=f"followup:{task.id}",
            kind="followup_task",
            severity="warning",
            text=staff_text,
            now=now,
            ticket_id=ticket.id,
            agent_id=ticket.supervisor_id,
        )
        written: list[Notice | None] = []
        if ticket.supervisor_id is not None:
            written.append(
                enqueue(
                    session,
                    NewNotice(
                        key=f"followup_task:{task.id}",
                        kind=notices.FOLLOWUP_TASK,
                        audience=STAFF,
                        text=staff_text,
                        due_at=now,
                        ticket_id=ticket.id,
                        recipient_agent_id=ticket.supervisor_id,
                        urgent=True,
                    ),
                    now,
                )
            )
        written.append(
            self._customer_notice(
                session,
                ticket,
                key=f"second_followup:{ticket.id}:{ticket.reopen_count}",
                kind=notices.SECOND_FOLLOWUP,
                text=notices.second_followup(
                    ticket.number, ticket.language, loop.second_followup_hours
                ),
                now=now,
            )
        )
        return [notice for notice in written if notice is not None]

    def followup_tasks(self, viewer: Agent, open_only: bool = True) -> Rows:
        """Second follow-up tasks: all for supervisors and admins, one's own for others."""
        now = self._now()
        query = select(FollowupTask, Ticket.number).join(
            Ticket, Ticket.id == FollowupTask.ticket_id
        )
        if not viewer.active:
            return []
        if viewer.role not in OVERSEERS:
            query = query.where(FollowupTask.assignee_id == viewer.id)
        if open_only:
            query = query.where(FollowupTask.done_at.is_(None))
        with self._sessions() as session:
            rows = session.execute(query.order_by(FollowupTask.due_at, FollowupTask.id)).all()
            agents = self._task_agents(session, [task for task, _ in rows])
            return [task_view(task, number, agents, now) for task, number in rows]

    def record_followup(
        self, task_id: int, outcome: str | FollowupOutcome, note: str, by: Agent
    ) -> dict[str, Any]:
        """Records how a second follow-up ended (supervisors and admins); history on the ticket."""
        result = _enum(FollowupOutcome, outcome, "outcome")
        text = _text(note, "A note", required=False)
        if not by.active or by.role not in OVERSEERS:
            raise CaseForbidden("Only supervisors and admins record follow-up outcomes.")
        now = self._now()
        with self._sessions.begin() as session:
            task = session.get(FollowupTask, task_id)
            if task is None:
                raise CaseNotFound(f"No follow-up task {task_id}.")
            if task.done_at is not None:
                raise CaseError(f"Follow-up task {task_id} is already done ({task.outcome}).")
            ticket = session.get(Ticket, task.ticket_id)
            if ticket is None:
                raise CaseNotFound(f"No follow-up task {task_id}.")
            task.done_at, task.outcome, task.note, task.done_by = (
                now,
                result,
                text or None,
                by.username,
            )
            summary = f"second follow-up: {result.value}"
            self.store.add_event(
                session,
                ticket,
                kind=TicketEventKind.note,
                actor=_actor(by),
                at=now,
                note=f"{summary} — {text}" if text else summary,
            )
            for alert in session.scalars(
                select(DeskAlert).where(
                    DeskAlert.key == f"followup:{task.id}", DeskAlert.acknowledged_at.is_(None)
                )
            ):
                alert.acknowledged_at, alert.acknowledged_by = now, by.username
            session.flush()
            return task_view(task, ticket.number, self._task_agents(session, [task]), now)

    # ------------------------------------------------------------------ alerts
    def _alert_query(self, viewer: Agent) -> Any:
        query = select(DeskAlert, Ticket.number).outerjoin(Ticket, Ticket.id == DeskAlert.ticket_id)
        if viewer.role in OVERSEERS:
            return query
        # an agent sees what is addressed to them, and the general alerts (SLA) of the tickets
        # they may take: their own and the unassigned ones, whose warning is the queue's
        return query.where(
            or_(
                DeskAlert.agent_id == viewer.id,
                and_(
                    DeskAlert.agent_id.is_(None),
                    Ticket.id.is_not(None),
                    or_(Ticket.assignee_id == viewer.id, Ticket.assignee_id.is_(None)),
                ),
            )
        )

    def alerts(
        self,
        viewer: Agent,
        after_id: int = 0,
        include_acknowledged: bool = False,
        limit: int = 100,
    ) -> Rows:
        """Alerts for `viewer`, oldest first.

        Overseers see all; agents theirs, and the SLA alerts of their own and unassigned tickets.
        """
        if not viewer.active or viewer.role not in (OVERSEERS | {AgentRole.agent}):
            return []
        query = self._alert_query(viewer).where(DeskAlert.id > after_id)
        if not include_acknowledged:
            query = query.where(DeskAlert.acknowledged_at.is_(None))
        with self._sessions() as session:
            rows = session.execute(
                query.order_by(DeskAlert.id).limit(min(max(limit, 1), 1000))
            ).all()
            return [alert_view(alert, number) for alert, number in rows]

    def acknowledge_alert(self, alert_id: int, by: Agent) -> dict[str, Any]:
        """Marks the alert seen (once; acknowledging again changes nothing)."""
        if not by.active or by.role not in (OVERSEERS | {AgentRole.agent}):
            raise CaseNotFound(f"No alert {alert_id}.")
        now = self._now()
        with self._sessions.begin() as session:
            row = session.execute(self._alert_query(by).where(DeskAlert.id == alert_id)).first()
            if row is None:
                raise CaseNotFound(f"No alert {alert_id}.")
            alert, number = row
            if alert.acknowledged_at is None:
                alert.acknowledged_at, alert.acknowledged_by = now, by.username
                session.flush()
            return alert_view(alert, number)
