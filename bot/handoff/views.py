"""How the desk shows handoffs and messages: the JSON of its API and WebSocket."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.core.db import Handoff, HandoffMessage
from bot.handoff.policy import reason_label


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def message_view(message: HandoffMessage) -> dict[str, Any]:
    """One message as the console shows it."""
    return {
        "id": message.id,
        "handoff_id": message.handoff_id,
        "kind": message.kind.value,
        "author": message.author,
        "text": message.text,
        "created_at": _iso(message.created_at),
    }


def handoff_view(
    handoff: Handoff, position: int | None = None, last: HandoffMessage | None = None
) -> dict[str, Any]:
    """A handoff as the queue shows it (see the desk API in README)."""
    packet = handoff.packet or {}
    customer = packet.get("customer") or {}
    return {
        "id": handoff.id,
        "conversation_id": handoff.conversation_id,
        "channel": handoff.channel,
        "status": handoff.status.value,
        "reason": handoff.reason,
        "reason_label": reason_label(handoff.reason),
        "agent": (
            {"username": handoff.agent.username, "display_name": handoff.agent.display_name}
            if handoff.agent is not None
            else None
        ),
        "customer_name": customer.get("name") or handoff.conversation_id,
        "vip": bool(customer.get("vip")),
        "language": handoff.language,
        "ticket_number": handoff.ticket.number,
        "tier": handoff.ticket.urgency.value,
        "complaint_grade": (
            handoff.ticket.complaint_grade.value if handoff.ticket.complaint_grade else None
        ),
        "due_at": _iso(handoff.due_at),
        "created_at": _iso(handoff.created_at),
        "claimed_at": _iso(handoff.claimed_at),
        "queue_position": position,
        "last_message": (
            {"kind": last.kind.value, "text": last.text, "created_at": _iso(last.created_at)}
            if last is not None
            else None
        ),
    }
