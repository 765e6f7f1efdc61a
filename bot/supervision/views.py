"""JSON views of QA data for the desk: findings, scores, a conversation's drill-down page.

Plain functions of loaded rows; who may see what is decided in `bot.supervision.appeals`.
Datetimes are ISO 8601 UTC strings.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.db import (
    Agent,
    Conversation,
    ConversationMessage,
    Handoff,
    QaFinding,
    QaScore,
    Ticket,
)
from bot.supervision.rules import subject_agent
from bot.supervision.scoring import conversation_link

TRANSCRIPT_LIMIT = 2000
"""Messages shown on a conversation's page at most."""


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 text of an instant, or None."""
    return moment.isoformat() if moment is not None else None


def _enum(value: Any) -> Any:
    return getattr(value, "value", value)


def finding_view(finding: QaFinding, message_text: str | None) -> dict[str, Any]:
    """A finding with its appeal (`message_text`: the evidence message's text, if any)."""
    return {
        "id": finding.id,
        "conversation_pk": finding.conversation_pk,
        "conversation_link": conversation_link(finding.conversation_pk),
        "subject_key": finding.subject_key,
        "agent": subject_agent(finding.subject_key),
        "rule_id": finding.rule_id,
        "title": finding.title,
        "points": finding.points,
        "severity": finding.severity,
        "red_card": finding.red_card,
        "detail": finding.detail,
        "created_at": iso(finding.created_at),
        "appeal_status": finding.appeal_status,
        "appeal_text": finding.appeal_text,
        "appealed_by": finding.appealed_by,
        "appealed_at": iso(finding.appealed_at),
        "decided_by": finding.decided_by,
        "decided_at": iso(finding.decided_at),
        "decision_note": finding.decision_note,
        "message_id": finding.message_id,
        "message_text": message_text,
    }


def score_view(score: QaScore) -> dict[str, Any]:
    """One subject's score."""
    return {
        "id": score.id,
        "subject_key": score.subject_key,
        "agent": subject_agent(score.subject_key),
        "score": score.score,
        "points": score.points,
        "findings": score.findings,
        "red_card": score.red_card,
        "scored_at": iso(score.scored_at),
    }


def message_view(message: ConversationMessage, flagged: Iterable[int] = ()) -> dict[str, Any]:
    """One transcript line; `flagged` are the ids of the findings it is evidence of."""
    return {
        "id": message.id,
        "at": iso(message.at),
        "role": message.role,
        "author": message.author,
        "text": message.text,
        "intent": message.intent,
        "confidence": message.confidence,
        "action": message.action,
        "findings": sorted(flagged),
    }


def conversation_fields(conversation: Conversation) -> dict[str, Any]:
    """The conversation's own columns."""
    c = conversation
    return {
        "pk": c.id,
        "link": conversation_link(c.id),
        "conversation_id": c.conversation_id,
        "channel": c.channel,
        "language": c.language,
        "source": c.source,
        "started_at": iso(c.started_at),
        "last_message_at": iso(c.last_message_at),
        "ended_at": iso(c.ended_at),
        "customer_messages": c.customer_messages,
        "bot_messages": c.bot_messages,
        "agent_messages": c.agent_messages,
        "kb_answers": c.kb_answers,
        "fallbacks": c.fallbacks,
        "first_intent": c.first_intent,
        "first_question": c.first_question,
        "outcome": c.outcome,
        "agents": list(c.agents or []),
        "transfers": c.transfers,
        "handoff_requested_at": iso(c.handoff_requested_at),
        "first_agent_reply_at": iso(c.first_agent_reply_at),
        "first_response_seconds": c.first_response_seconds,
        "rating": c.rating,
        "bot_score": c.bot_score,
        "agent_score": c.agent_score,
        "red_cards": c.red_cards,
        "scored_at": iso(c.scored_at),
    }


def conversation_page(
    session: Session, conversation: Conversation, subjects: set[str] | None
) -> dict[str, Any]:
    """The drill-down page's data: fields, transcript, scores, findings, ticket and handoff.

    `subjects`: the subject keys whose scores and findings are shown (None: all).
    """
    pk = conversation.id
    scores = [
        s
        for s in session.scalars(
            select(QaScore).where(QaScore.conversation_pk == pk).order_by(QaScore.id)
        )
        if subjects is None or s.subject_key in subjects
    ]
    findings = [
        f
        for f in session.scalars(
            select(QaFinding).where(QaFinding.conversation_pk == pk).order_by(QaFinding.id)
        )
        if subjects is None or f.subject_key in subjects
    ]
    messages = list(
        session.scalars(
            select(ConversationMessage)
            .where(ConversationMessage.conversation_pk == pk)
            .order_by(ConversationMessage.at, ConversationMessage.id)
            .limit(TRANSCRIPT_LIMIT)
        )
    )
    texts = {m.id: m.text for m in messages}
    flagged: dict[int, list[int]] = {}
    for finding in findings:
        if finding.message_id is not None:
            flagged.setdefault(finding.message_id, []).append(finding.id)
    missing = {f.message_id for f in findings if f.message_id and f.message_id not in texts}
    if missing:
        texts.update(
            session.execute(
                select(ConversationMessage.id, ConversationMessage.text).where(
                    ConversationMessage.id.in_(missing)
                )
            ).tuples()
        )
    return {
        **conversation_fields(conversation),
        "transcript": [message_view(m, flagged.get(m.id, ())) for m in messages],
        "scores": [score_view(s) for s in scores],
        "findings": [
            finding_view(f, texts.get(f.message_id) if f.message_id else None) for f in findings
        ],
        "ticket": _ticket(session, conversation.ticket_id),
        "handoff_id": conversation.handoff_id,
        "handoff": _handoff(session, conversation.handoff_id),
    }


def _ticket(session: Session, ticket_id: int | None) -> dict[str, Any] | None:
    if ticket_id is None:
        return None
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        return None
    return {
        "number": ticket.number,
        "link": f"/desk/tickets/{ticket.number}",
        "status": _enum(ticket.status),
        "urgency": _enum(ticket.urgency),
        "complaint_grade": _enum(ticket.complaint_grade),
        "response_due_at": iso(ticket.response_due_at),
        "first_responded_at": iso(ticket.first_responded_at),
        "satisfaction": ticket.satisfaction,
    }


def _handoff(session: Session, handoff_id: int | None) -> dict[str, Any] | None:
    if handoff_id is None:
        return None
    row = session.execute(
        select(Handoff.id, Handoff.status, Handoff.created_at, Handoff.claimed_at, Agent.username)
        .outerjoin(Agent, Agent.id == Handoff.agent_id)
        .where(Handoff.id == handoff_id)
    ).first()
    if row is None:
        return None
    return {
        "id": row.id,
        "status": _enum(row.status),
        "created_at": iso(row.created_at),
        "claimed_at": iso(row.claimed_at),
        "agent": row.username,
    }
