"""The service loop's outbox and desk alerts: rows written in the caller's transaction.

A change that owes someone a message (a resolve owes the result and the satisfaction
question) writes the `Notice` in the same transaction as the change, so the message is
neither lost (the change committed, the notice with it) nor sent for a change that rolled
back. Keys are unique: planning the same notice or raising the same alert twice stores it
once. Delivery is `bot.followups`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.core.db import DeskAlert, Notice, NoticeStatus, Ticket

CUSTOMER = "customer"
STAFF = "staff"


@dataclass(frozen=True)
class NewNotice:
    """A message to enqueue; `key` names it uniquely (e.g. `result:<ticket id>:<round>`)."""

    key: str
    kind: str
    audience: str
    text: str
    due_at: datetime
    language: str = "zh"
    ticket_id: int | None = None
    conversation_id: str | None = None
    channel: str | None = None
    buttons: list[dict[str, str]] | None = None
    slots: dict[str, Any] | None = None
    recipient_agent_id: int | None = None
    urgent: bool = False
    status: NoticeStatus = NoticeStatus.pending
    """`sent` records a message delivered by another path (the desk's own rating question)."""
    via: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def customer_notice(
    ticket: Ticket,
    *,
    key: str,
    kind: str,
    text: str,
    due_at: datetime,
    buttons: list[dict[str, str]] | None = None,
    slots: dict[str, Any] | None = None,
    urgent: bool = False,
) -> NewNotice:
    """A notice to the ticket's customer, in their conversation, channel and language."""
    return NewNotice(
        key=key,
        kind=kind,
        audience=CUSTOMER,
        text=text,
        due_at=due_at,
        language=ticket.language,
        ticket_id=ticket.id,
        conversation_id=ticket.customer_id,
        channel=ticket.channel,
        buttons=buttons,
        slots=slots,
        urgent=urgent,
    )


def enqueue(session: Session, notice: NewNotice, now: datetime) -> Notice | None:
    """Adds the notice unless one with its key exists; the new row, or None if it existed.

    Runs inside the caller's transaction (a savepoint guards the unique key, so a row
    another writer stored meanwhile does not abort the caller's work).
    """
    if session.scalar(select(Notice.id).where(Notice.key == notice.key)) is not None:
        return None
    row = Notice(
        key=notice.key,
        kind=notice.kind,
        audience=notice.audience,
        ticket_id=notice.ticket_id,
        conversation_id=notice.conversation_id,
        channel=notice.channel,
        language=notice.language,
        text=notice.text,
        buttons=notice.buttons,
        slots=notice.slots,
        recipient_agent_id=notice.recipient_agent_id,
        urgent=notice.urgent,
        due_at=notice.due_at,
        status=notice.status,
        attempts=0,
        sent_at=now if notice.status is NoticeStatus.sent else None,
        via=notice.via,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None  # stored by another writer meanwhile
    return row


def raise_alert(
    session: Session,
    *,
    key: str,
    kind: str,
    severity: str,
    text: str,
    now: datetime,
    ticket_id: int | None = None,
    agent_id: int | None = None,
) -> DeskAlert | None:
    """Adds a desk alert unless one with `key` exists; the new row, or None if it existed."""
    if session.scalar(select(DeskAlert.id).where(DeskAlert.key == key)) is not None:
        return None
    row = DeskAlert(
        key=key,
        kind=kind,
        severity=severity,
        ticket_id=ticket_id,
        agent_id=agent_id,
        text=text,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None
    return row
