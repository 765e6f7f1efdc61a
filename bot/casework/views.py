"""JSON-able views of tickets and what hangs off them, as the desk and the CLI show them.

Pure functions of loaded rows: datetimes become ISO 8601 UTC strings, enums their values,
agents their usernames. The ticket row view is the contract of `GET /desk/api/tickets`:
`number, status, tier, grade, due_at, assignee, assignee_name, supervisor, summary, channel,
language, customer (masked), created_at, updated_at, sla_state, at_risk, overdue,
first_responded_at, resolved_at, satisfaction, escalated`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from bot.core.db import (
    Agent,
    DeskAlert,
    FollowupTask,
    Handoff,
    HandoffMessage,
    Notice,
    ServiceRecord,
    Ticket,
    TicketEvent,
    TicketStatus,
)
from bot.service.tickets import ALLOWED_TRANSITIONS, FINISHED_STATUSES

RECORD_FIELDS = (
    "category",
    "order_number",
    "product",
    "situation",
    "problem",
    "problem_since",
    "implication",
    "impacts",
    "need_payoff",
    "need_points",
    "preferences",
    "special_requests",
    "skipped",
    "urgency",
    "complaint_grade",
    "classification_reasons",
    "correction_rounds",
    "completeness",
)
"""The service record's fields on the ticket page (the SPIN answers among them)."""


def iso(moment: datetime | None) -> str | None:
    """An aware datetime as ISO 8601 in UTC ("2026-11-22T09:30:00+00:00"), None as None."""
    return None if moment is None else moment.astimezone(UTC).isoformat()


def mask_customer(identity: str) -> str:
    """A sender id shown to staff: the channel prefix, 3 characters, "***", the last 2."""
    prefix, colon, rest = identity.rpartition(":")
    head = f"{prefix}{colon}"
    if len(rest) <= 5:
        return f"{head}{rest[:1]}***"
    return f"{head}{rest[:3]}***{rest[-2:]}"


def is_overdue(ticket: Ticket, now: datetime) -> bool:
    """Past its due time and not finished."""
    return ticket.status not in FINISHED_STATUSES and now > ticket.due_at


def _username(agents: Mapping[int, Agent], agent_id: int | None) -> str | None:
    agent = agents.get(agent_id) if agent_id is not None else None
    return agent.username if agent is not None else None


def ticket_row(ticket: Ticket, agents: Mapping[int, Agent], now: datetime) -> dict[str, Any]:
    """The ticket as one row of the queue (`agents` by id: assignee and supervisor)."""
    overdue = is_overdue(ticket, now)
    assignee = agents.get(ticket.assignee_id) if ticket.assignee_id is not None else None
    return {
        "number": ticket.number,
        "status": ticket.status.value,
        "tier": ticket.urgency.value,
        "grade": ticket.complaint_grade.value if ticket.complaint_grade else None,
        "due_at": iso(ticket.due_at),
        "assignee": assignee.username if assignee else None,
        "assignee_name": assignee.display_name if assignee else None,
        "supervisor": _username(agents, ticket.supervisor_id),
        "summary": ticket.summary,
        "channel": ticket.channel,
        "language": ticket.language,
        "customer": mask_customer(ticket.customer_id),
        "created_at": iso(ticket.created_at),
        "updated_at": iso(ticket.updated_at),
        "sla_state": ticket.sla_state,
        "at_risk": ticket.sla_state == "at_risk"
        and not overdue
        and ticket.status not in FINISHED_STATUSES,
        "overdue": overdue,
        "first_responded_at": iso(ticket.first_responded_at),
        "resolved_at": iso(ticket.resolved_at),
        "satisfaction": ticket.satisfaction,
        "escalated": ticket.escalated_at is not None,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    return getattr(value, "value", value)


def record_view(record: ServiceRecord | None) -> dict[str, Any]:
    """The service record's fields (empty when the record is gone)."""
    if record is None:
        return {}
    return {name: _plain(getattr(record, name)) for name in RECORD_FIELDS} | {
        "created_at": iso(record.created_at),
        "confirmed_at": iso(record.confirmed_at),
    }


def event_view(event: TicketEvent) -> dict[str, Any]:
    """One history entry."""
    return {
        "at": iso(event.at),
        "kind": event.kind.value,
        "from": event.from_status.value if event.from_status else None,
        "to": event.to_status.value,
        "actor": event.actor,
        "note": event.note,
        "visible_to_customer": event.visible_to_customer,
    }


def handoff_view(handoff: Handoff, messages: list[HandoffMessage]) -> dict[str, Any]:
    """A linked conversation with its transcript."""
    return {
        "id": handoff.id,
        "status": handoff.status.value,
        "agent": handoff.agent.username if handoff.agent else None,
        "created_at": iso(handoff.created_at),
        "ended_at": iso(handoff.ended_at),
        "messages": [
            {
                "kind": message.kind.value,
                "author": message.author,
                "text": message.text,
                "created_at": iso(message.created_at),
            }
            for message in messages
        ],
    }


def notice_view(notice: Notice) -> dict[str, Any]:
    """One message of the outbox about the ticket."""
    return {
        "id": notice.id,
        "kind": notice.kind,
        "audience": notice.audience,
        "status": notice.status.value,
        "via": notice.via,
        "due_at": iso(notice.due_at),
        "sent_at": iso(notice.sent_at),
        "error": notice.error,
        "text": notice.text,
    }


def task_view(
    task: FollowupTask, number: str, agents: Mapping[int, Agent], now: datetime
) -> dict[str, Any]:
    """A second follow-up task (`number`: its ticket's)."""
    return {
        "id": task.id,
        "ticket": number,
        "score": task.score,
        "assignee": _username(agents, task.assignee_id),
        "due_at": iso(task.due_at),
        "created_at": iso(task.created_at),
        "done_at": iso(task.done_at),
        "outcome": task.outcome.value if task.outcome else None,
        "note": task.note,
        "done_by": task.done_by,
        "overdue": task.done_at is None and now > task.due_at,
    }


def alert_view(alert: DeskAlert, number: str | None) -> dict[str, Any]:
    """A desk alert (`number`: its ticket's, if any)."""
    return {
        "id": alert.id,
        "key": alert.key,
        "kind": alert.kind,
        "severity": alert.severity,
        "ticket": number,
        "text": alert.text,
        "created_at": iso(alert.created_at),
        "acknowledged_at": iso(alert.acknowledged_at),
        "acknowledged_by": alert.acknowledged_by,
    }


def allowed_statuses(status: TicketStatus) -> list[str]:
    """Where the desk may move a ticket from `status` (resolved goes through resolve)."""
    return sorted(target.value for target in ALLOWED_TRANSITIONS[status])
