"""What the QA checks read about a conversation: its messages, its ticket, its handoff.

`load_facts` loads many conversations in a few batched queries (conversations, messages,
tickets, handoffs, knowledge-base feedback), never one query per conversation, and returns
plain frozen dataclasses the checks (`bot.supervision.checks`) read without a database.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.db import (
    Agent,
    Conversation,
    ConversationMessage,
    Handoff,
    KbFeedback,
    KbQuery,
    Ticket,
)
from bot.service.reading import normalise

CHUNK = 500
"""Ids per `IN (...)` list."""

STAFF_ROLES = frozenset({"bot", "agent"})
"""Roles that speak for the service (system messages are the scheduler's notices)."""


@dataclass(frozen=True)
class Message:
    """One message of a conversation; `normal` is its text normalised for keyword matching."""

    id: int
    at: datetime
    role: str
    author: str | None
    text: str
    action: str | None = None
    normal: str = ""

    @property
    def subject_key(self) -> str | None:
        """`bot`, `agent:<username>`, or None (customer and system messages)."""
        if self.role == "bot":
            return "bot"
        if self.role == "agent":
            return f"agent:{self.author or ''}"
        return None


@dataclass(frozen=True)
class ConversationFacts:
    """One ended conversation as the checks see it (datetimes aware UTC)."""

    pk: int
    conversation_id: str
    channel: str
    language: str
    started_at: datetime
    ended_at: datetime | None
    outcome: str | None
    messages: tuple[Message, ...]
    handoff_requested_at: datetime | None = None
    agents_on_duty_at: datetime | None = None
    """When agents were first at work at or after the handoff request (the policy's business
    hours; set by the inspector): a wait for a person counts from here, so a customer who asks
    at night is not the morning shift's slow reply."""
    agents: tuple[str, ...] = ()
    transfers: int = 0
    tier: str = "normal"
    """The linked ticket's urgency tier (`normal` without a ticket)."""
    complaint_grade: str | None = None
    response_due_at: datetime | None = None
    first_responded_at: datetime | None = None
    resolution_due_at: datetime | None = None
    resolved_at: datetime | None = None
    rating: int | None = None
    kb_rejected: bool = False
    """The customer said a knowledge-base answer did not solve it (during the conversation)."""
    source: str = "live"
    bot_messages: int = 0
    fallbacks: int = 0
    ticket_id: int | None = None
    handoff_id: int | None = None
    handoff_agent: str | None = None
    """The username of the agent who claimed the handoff, if anyone did."""
    checked_at: datetime | None = None
    """When the checks run (for "still unanswered past its due time")."""

    @cached_property
    def staff_messages(self) -> tuple[Message, ...]:
        """Bot and agent messages, in order."""
        return tuple(m for m in self.messages if m.role in STAFF_ROLES)

    @cached_property
    def _by_subject(self) -> dict[str, tuple[Message, ...]]:
        grouped: dict[str, list[Message]] = defaultdict(list)
        for message in self.messages:
            key = message.subject_key
            if key is not None:
                grouped[key].append(message)
        return {key: tuple(found) for key, found in grouped.items()}

    def of(self, subject_key: str) -> tuple[Message, ...]:
        """The messages a subject (`bot`, `agent:<username>`) wrote, in order."""
        return self._by_subject.get(subject_key, ())

    def subjects(self) -> list[str]:
        """Who is scored: the bot if it wrote, every agent who wrote, the handoff's claimer."""
        keys = ["bot"] if self.bot_messages > 0 or "bot" in self._by_subject else []
        names = [*self.agents, *(m.author or "" for m in self.messages if m.role == "agent")]
        if self.handoff_agent:
            names.append(self.handoff_agent)
        keys += [f"agent:{name}" for name in dict.fromkeys(names)]
        return keys

    @property
    def end(self) -> datetime:
        """When it ended (its last message when the end is not recorded)."""
        if self.ended_at is not None:
            return self.ended_at
        return self.messages[-1].at if self.messages else self.started_at


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _naive(moment: datetime) -> datetime:
    """A UTC instant as the naive UTC value `kb_queries.created_at` stores."""
    return moment.replace(tzinfo=None) - (moment.utcoffset() or timedelta(0))


def load_facts(
    session: Session, pks: Sequence[int], now: datetime | None = None
) -> list[ConversationFacts]:
    """The facts of these conversations (in the order of `pks`; unknown ids are left out).

    Five queries per 500 conversations, whatever their length. `now` is when the checks run
    (default: each conversation's end).
    """
    ids = list(dict.fromkeys(pks))
    conversations: dict[int, Any] = {}
    messages: dict[int, list[Message]] = defaultdict(list)
    for chunk in _chunks(ids):
        for found in session.execute(
            select(
                Conversation.id,
                Conversation.conversation_id,
                Conversation.channel,
                Conversation.language,
                Conversation.source,
                Conversation.started_at,
                Conversation.last_message_at,
                Conversation.ended_at,
                Conversation.outcome,
                Conversation.handoff_requested_at,
                Conversation.agents,
                Conversation.transfers,
                Conversation.rating,
                Conversation.bot_messages,
                Conversation.fallbacks,
                Conversation.ticket_id,
                Conversation.handoff_id,
            ).where(Conversation.id.in_(chunk))
        ):
            conversations[found.id] = found
        for m in session.execute(
            select(
                ConversationMessage.id,
                ConversationMessage.conversation_pk,
                ConversationMessage.at,
                ConversationMessage.role,
                ConversationMessage.author,
                ConversationMessage.text,
                ConversationMessage.action,
            )
            .where(ConversationMessage.conversation_pk.in_(chunk))
            .order_by(
                ConversationMessage.conversation_pk, ConversationMessage.at, ConversationMessage.id
            )
        ):
            text = m.text or ""
            messages[m.conversation_pk].append(
                Message(m.id, m.at, m.role, m.author, text, m.action, normalise(text))
            )
    tickets = _tickets(session, [r.ticket_id for r in conversations.values() if r.ticket_id])
    handoffs = _handoffs(session, [r.handoff_id for r in conversations.values() if r.handoff_id])
    rejected = _kb_rejections(session, list(conversations.values()))
    facts = []
    for pk in ids:
        row = conversations.get(pk)
        if row is None:
            continue
        ticket = tickets.get(row.ticket_id) if row.ticket_id else None
        claimer = handoffs.get(row.handoff_id) if row.handoff_id else None
        facts.append(
            ConversationFacts(
                pk=row.id,
                conversation_id=row.conversation_id,
                channel=row.channel,
                language=row.language,
                started_at=row.started_at,
                ended_at=row.ended_at,
                outcome=row.outcome,
                messages=tuple(messages.get(pk, ())),
                handoff_requested_at=row.handoff_requested_at,
                agents=tuple(row.agents or ()),
                transfers=row.transfers or 0,
                tier=_value(ticket.urgency) if ticket else "normal",
                complaint_grade=_value(ticket.complaint_grade) if ticket else None,
                response_due_at=ticket.response_due_at if ticket else None,
                first_responded_at=ticket.first_responded_at if ticket else None,
                resolution_due_at=ticket.resolution_due_at if ticket else None,
                resolved_at=ticket.resolved_at if ticket else None,
                rating=row.rating,
                kb_rejected=pk in rejected,
                source=row.source,
                bot_messages=row.bot_messages or 0,
                fallbacks=row.fallbacks or 0,
                ticket_id=row.ticket_id,
                handoff_id=row.handoff_id,
                handoff_agent=claimer,
                checked_at=now or row.ended_at or row.last_message_at,
            )
        )
    return facts


def _value(member: Any) -> str:
    return str(getattr(member, "value", member)) if member is not None else ""


def _tickets(session: Session, ids: list[int]) -> dict[int, Any]:
    found: dict[int, Any] = {}
    for chunk in _chunks(sorted(set(ids))):
        for row in session.execute(
            select(
                Ticket.id,
                Ticket.urgency,
                Ticket.complaint_grade,
                Ticket.response_due_at,
                Ticket.first_responded_at,
                Ticket.resolution_due_at,
                Ticket.resolved_at,
            ).where(Ticket.id.in_(chunk))
        ):
            found[row.id] = row
    return found


def _handoffs(session: Session, ids: list[int]) -> dict[int, str | None]:
    """Handoff id -> the username of the agent who claimed it (None: nobody)."""
    found: dict[int, str | None] = {}
    for chunk in _chunks(sorted(set(ids))):
        for handoff_id, username in session.execute(
            select(Handoff.id, Agent.username)
            .outerjoin(Agent, Agent.id == Handoff.agent_id)
            .where(Handoff.id.in_(chunk))
        ):
            found[handoff_id] = username
    return found


def _kb_rejections(session: Session, rows: list[Any]) -> set[int]:
    """Conversations during which the customer said a knowledge-base answer did not help."""
    spans: dict[str, list[tuple[datetime, datetime, int]]] = defaultdict(list)
    for row in rows:
        end = row.ended_at or row.last_message_at
        spans[row.conversation_id].append((_naive(row.started_at), _naive(end), row.id))
    if not spans:
        return set()
    earliest = min(start for found in spans.values() for start, _, _ in found)
    latest = max(end for found in spans.values() for _, end, _ in found)
    rejected: set[int] = set()
    for chunk in _chunks(sorted(spans)):
        for sender, created_at in session.execute(
            select(KbQuery.sender_id, KbQuery.created_at).where(
                KbQuery.sender_id.in_(chunk),
                KbQuery.feedback == KbFeedback.not_solved,
                KbQuery.created_at >= earliest,
                KbQuery.created_at <= latest,
            )
        ):
            for start, end, pk in spans[sender]:
                if start <= created_at <= end:
                    rejected.add(pk)
    return rejected
