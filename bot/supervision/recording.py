"""Records conversations from Rasa's event broker: `conversations` and `conversation_messages`.

Rasa publishes every tracker event (`bot.handoff.broker.EventSource`); the recorder reads them
as consumer `"supervision"` and keeps its read position in `broker_offsets`, written in the
same transaction as the rows it stored: a restart neither loses nor repeats an event. The
position moves by compare-and-set, so a second recorder reading the same batch (`kefu qa run`
while the service runs) stores nothing and rereads from the new position.

What becomes what:

- a `user` event is a customer message (intent and confidence from `parse_data`). It starts
  a conversation when the sender has none open, or when the open one has been quiet for the
  policy's `supervision.conversation_idle_minutes` and no handoff of the sender is open (that
  one is closed first). Channel from `input_channel`; language from the NLU's `language`
  entity, else Han characters (zh) or Latin letters (en); a later `language` slot wins.
- a `bot` event is a bot message (`action`: its response `utter_action`, else the latest
  action of the sender); with `metadata.kefu.agent` an agent message (the reply an agent
  typed, authored by that username; changes of agent count as transfers), with
  `metadata.kefu.notice_id` a system message (the scheduler's notices). The texts the desk
  sends by itself on an agent's behalf ("X has joined, one moment", "transferred to X", the
  rating question of a resolve: `metadata.kefu.agent` with `message_id` null) are system
  messages authored by that agent: QA judges what agents typed, and the first response is
  the first typed reply, not the automatic "joined" line. Fallback replies
  (`bot.supervision.bot_replies`) count in `fallbacks`, knowledge-base answers in
  `kb_answers`.
- a `pause` event or the `action_handoff` action marks the handoff as requested.

A message of a sender with no open conversation other than a customer's (a notice days
later) is not recorded; neither is a customer message older than the sender's last ended
conversation (a late event of a closed conversation). A message stamped before its
conversation's start is stored at the start. Events that are not dicts, lack a sender or a
time, or have the wrong types are skipped, never a crash.

`close_idle` ends quiet conversations and fills what is known at the end: the handoff and
ticket, knowledge-base answers and "did not solve it" feedback (`kb_queries`), the rating,
and the outcome (`self_service`, `ticket`, `handoff`, `unresolved`, `abandoned`).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, case, exists, func, select, update
from sqlalchemy.orm import Session

from bot.core.db import (
    OPEN_HANDOFF_STATUSES,
    Agent,
    BrokerOffset,
    Conversation,
    ConversationMessage,
    Handoff,
    KbFeedback,
    KbOutcome,
    KbQuery,
    Ticket,
    session_factory,
)
from bot.handoff.broker import BATCH_SIZE, BrokerEvent, EventSource
from bot.service.policy import ServicePolicy
from bot.supervision.bot_replies import (
    FAILING,
    HANDOFF_ACTIONS,
    KB_ANSWER_RESPONSES,
    NOT_SOLVED_RESPONSES,
    is_fallback,
)

logger = logging.getLogger(__name__)

CONSUMER_NAME = "supervision"

SMALL_TALK_INTENTS = frozenset(
    {
        "greet", "goodbye", "thank", "affirm", "deny", "bot_challenge", "punctuation",
        "unreadable_input", "rate_service", "skip", "kb_select",
    }
)  # fmt: skip
"""Intents that are not the customer's question (first_intent / first_question skip them)."""

SPAN_SLACK = timedelta(seconds=60)
"""Rows of other tables (handoffs, tickets, kb_queries) this close to the span belong to it."""
CLOSE_BATCH = 500
MAX_TEXT = 4000
MAX_SENDER = 128
_MAX_REMEMBERED = 10_000
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]{2,}")


@dataclass(frozen=True)
class _Event:
    """A broker event the recorder uses, parsed and checked."""

    position: str
    sender: str
    kind: str
    at: datetime
    text: str = ""
    intent: str | None = None
    confidence: float | None = None
    channel: str | None = None
    language: str | None = None
    name: str | None = None
    """An action's name, or a slot's name."""
    value: Any = None
    agent: str | None = None
    notice: bool = False
    """A system message: the scheduler's notice, or a text the desk sent for an agent."""
    utter_action: str | None = None
    kb_answer: bool = False


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _name(value: Any, limit: int = 80) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _moment(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def detect_language(text: str, parse_data: dict[str, Any] | None = None) -> str | None:
    """`zh` or `en`: the NLU's `language` entity, else Han characters or Latin words; else None."""
    entities = (parse_data or {}).get("entities")
    for entity in entities if isinstance(entities, list) else []:
        if _dict(entity).get("entity") == "language" and entity.get("value") in ("zh", "en"):
            return str(entity["value"])
    if text.startswith("/"):
        return None  # a button's payload
    if _HAN.search(text):
        return "zh"
    return "en" if _LATIN.search(text) else None


def _parse(event: BrokerEvent) -> _Event | None:
    """The event if the recorder uses it and it is well formed, else None."""
    data = event.data if isinstance(event.data, dict) else {}
    kind = data.get("event")
    sender = event.sender_id or data.get("sender_id")
    at = _moment(data.get("timestamp"))
    if kind not in ("user", "bot", "action", "pause", "slot") or at is None:
        return None
    if not isinstance(sender, str) or not sender or len(sender) > MAX_SENDER:
        return None
    base = {"position": str(event.position), "sender": sender, "kind": kind, "at": at}
    if kind == "user":
        text = _text(data.get("text")).strip()
        if not text:
            return None
        parse_data = _dict(data.get("parse_data"))
        intent = _dict(parse_data.get("intent"))
        confidence: Any = intent.get("confidence")
        valid = isinstance(confidence, int | float) and math.isfinite(confidence)
        return _Event(
            **base,
            text=text,
            intent=_name(intent.get("name")),
            confidence=float(confidence) if valid else None,
            channel=_name(data.get("input_channel"), 40),
            language=detect_language(text, parse_data),
        )
    if kind == "bot":
        text = _text(data.get("text")).strip()
        if not text:
            return None
        metadata = _dict(data.get("metadata"))
        kefu = _dict(metadata.get("kefu"))
        utter = _name(metadata.get("utter_action"))
        agent = _name(kefu.get("agent"))
        typed = agent is not None and not ("message_id" in kefu and kefu["message_id"] is None)
        return _Event(
            **base,
            text=text,
            agent=agent,
            notice=bool(kefu) and not typed,
            utter_action=utter,
            kb_answer=utter in KB_ANSWER_RESPONSES or bool(metadata.get("kb_entry_id")),
        )
    if kind in ("action", "slot"):
        name = _name(data.get("name"))
        return _Event(**base, name=name, value=data.get("value")) if name else None
    return _Event(**base)


@dataclass
class _Batch:
    """What one batch needs of the database, loaded in a few queries."""

    session: Session
    open: dict[str, Conversation]
    last_ended: dict[str, datetime]
    held: set[str]
    agent_ids: dict[str, int]
    stored: set[str]
    last_agent: dict[int, str | None] = field(default_factory=dict)


class _Overtaken(Exception):
    """Another recorder stored this batch first."""


class ConversationRecorder:
    """Turns broker events into recorded conversations; `step` is one batch (blocking)."""

    def __init__(
        self,
        engine: Engine,
        source: EventSource,
        policy: ServicePolicy,
        consumer: str = CONSUMER_NAME,
    ) -> None:
        self._sessions = session_factory(engine)
        self.source = source
        self.consumer = consumer
        self.idle = timedelta(minutes=policy.supervision.conversation_idle_minutes)
        self._position: str | None = None
        self._loaded = False
        self._last_action: dict[str, str] = {}

    # ------------------------------------------------------------------ reading
    def step(self) -> int:
        """Reads one batch (at most 500 events), stores it with the new position; events read."""
        if not self._loaded:
            with self._sessions() as session:
                row = session.get(BrokerOffset, self.consumer)
                self._position = row.position if row is not None else None
            self._loaded = True
        events = self.source.read(self._position, BATCH_SIZE)
        if not events:
            return 0
        parsed = [p for p in map(_parse, events) if p is not None]
        try:
            with self._sessions.begin() as session:
                self._advance(session, events[-1].position)
                self._store(session, parsed)
        except _Overtaken:
            self._loaded = False  # reread the position the other recorder wrote
            return 0
        self._position = events[-1].position
        if len(self._last_action) > _MAX_REMEMBERED:
            self._last_action.clear()
        return len(events)

    def drain(self, max_batches: int = 200) -> int:
        """Reads batches until the broker has no more (or `max_batches`); events read."""
        total = 0
        for _ in range(max_batches):
            read = self.step()
            total += read
            if read < BATCH_SIZE:
                break
        return total

    def _advance(self, session: Session, position: str) -> None:
        """Moves the read position from the one this recorder read at (compare-and-set)."""
        now = datetime.now(UTC)
        if self._position is None:
            if session.get(BrokerOffset, self.consumer) is not None:
                raise _Overtaken
            session.add(BrokerOffset(consumer=self.consumer, position=position, updated_at=now))
            session.flush()
            return
        moved = session.execute(
            update(BrokerOffset)
            .where(
                BrokerOffset.consumer == self.consumer,
                BrokerOffset.position == self._position,
            )
            .values(position=position, updated_at=now)
        )
        if cast(CursorResult[Any], moved).rowcount != 1:
            raise _Overtaken

    def _store(self, session: Session, events: list[_Event]) -> None:
        senders = {e.sender for e in events}
        if not senders:
            return
        batch = self._load(session, events, senders)
        for event in events:
            if f"event:{event.position}" in batch.stored:
                continue  # read before (the position was reset): stored once
            if event.kind == "user":
                self._customer(batch, event)
            elif event.kind == "bot":
                self._bot(batch, event)
            elif event.kind == "action":
                if event.name != "action_listen":
                    self._last_action[event.sender] = event.name or ""
                if event.name in HANDOFF_ACTIONS:
                    self._handoff_requested(batch, event)
            elif event.kind == "pause":
                self._handoff_requested(batch, event)
            elif event.kind == "slot" and event.name == "language":
                conversation = batch.open.get(event.sender)
                if conversation is not None and event.value in ("zh", "en"):
                    conversation.language = str(event.value)

    def _load(self, session: Session, events: list[_Event], senders: set[str]) -> _Batch:
        open_rows = session.scalars(
            select(Conversation)
            .where(Conversation.conversation_id.in_(senders), Conversation.ended_at.is_(None))
            .order_by(Conversation.id)
        )
        ended = session.execute(
            select(Conversation.conversation_id, func.max(Conversation.ended_at))
            .where(Conversation.conversation_id.in_(senders), Conversation.ended_at.is_not(None))
            .group_by(Conversation.conversation_id)
        )
        held = session.scalars(
            select(Handoff.conversation_id).where(
                Handoff.conversation_id.in_(senders), Handoff.status.in_(OPEN_HANDOFF_STATUSES)
            )
        )
        usernames = {e.agent for e in events if e.agent}
        agents = session.execute(
            select(Agent.username, Agent.id).where(Agent.username.in_(usernames))
        )
        keys = [f"event:{e.position}" for e in events if e.kind in ("user", "bot")]
        stored = session.scalars(
            select(ConversationMessage.source_key).where(ConversationMessage.source_key.in_(keys))
        )
        return _Batch(
            session=session,
            open={row.conversation_id: row for row in open_rows},  # the newest wins
            last_ended={sender: at for sender, at in ended if at is not None},
            held=set(held),
            agent_ids={name: agent_id for name, agent_id in agents},
            stored={key for key in stored if key},
        )

    # ------------------------------------------------------------------ events
    def _current(self, batch: _Batch, event: _Event) -> Conversation | None:
        """The sender's open conversation, closed first when it went quiet before `event`."""
        conversation = batch.open.get(event.sender)
        if conversation is None:
            return None
        quiet = event.at - conversation.last_message_at >= self.idle
        if quiet and event.sender not in batch.held:
            _finish(batch.session, conversation, event.at)
            batch.open.pop(event.sender)
            batch.last_ended[event.sender] = conversation.last_message_at
            return None
        return conversation

    def _customer(self, batch: _Batch, event: _Event) -> None:
        conversation = self._current(batch, event)
        if conversation is None:
            ended = batch.last_ended.get(event.sender)
            if ended is not None and event.at < ended:
                return  # a late event of a conversation already closed
            conversation = _new_conversation(event)
            batch.session.add(conversation)
            batch.session.flush()
            batch.open[event.sender] = conversation
        conversation.customer_messages += 1
        if conversation.first_intent is None and event.intent not in SMALL_TALK_INTENTS:
            conversation.first_intent = event.intent
            if conversation.first_question is None and not event.text.startswith("/"):
                conversation.first_question = event.text
        self._message(
            batch,
            conversation,
            event,
            "customer",
            intent=event.intent,
            confidence=event.confidence,
        )

    def _bot(self, batch: _Batch, event: _Event) -> None:
        conversation = self._current(batch, event)
        if conversation is None:
            return
        if event.notice:
            self._message(batch, conversation, event, "system", author=event.agent)
        elif event.agent:
            self._agent(batch, conversation, event)
        else:
            action = event.utter_action or _name(self._last_action.get(event.sender))
            conversation.bot_messages += 1
            if is_fallback(event.utter_action, action):
                conversation.fallbacks += 1
            if event.kb_answer:
                conversation.kb_answers += 1
            self._message(batch, conversation, event, "bot", action=action)

    def _agent(self, batch: _Batch, conversation: Conversation, event: _Event) -> None:
        name = event.agent or ""
        if conversation.id not in batch.last_agent:
            batch.last_agent[conversation.id] = batch.session.scalar(
                select(ConversationMessage.author)
                .where(
                    ConversationMessage.conversation_pk == conversation.id,
                    ConversationMessage.role == "agent",
                )
                .order_by(ConversationMessage.id.desc())
                .limit(1)
            )
        previous = batch.last_agent[conversation.id]
        if previous is not None and previous != name:
            conversation.transfers += 1
        batch.last_agent[conversation.id] = name
        if name not in (conversation.agents or []):
            conversation.agents = [*(conversation.agents or []), name]
        conversation.agent_id = batch.agent_ids.get(name, conversation.agent_id)
        conversation.agent_messages += 1
        if conversation.first_agent_reply_at is None:
            at = max(event.at, conversation.started_at)
            conversation.first_agent_reply_at = at
            _set_first_response(conversation)
        self._message(batch, conversation, event, "agent", author=name)

    def _handoff_requested(self, batch: _Batch, event: _Event) -> None:
        conversation = self._current(batch, event)
        if conversation is not None and conversation.handoff_requested_at is None:
            conversation.handoff_requested_at = max(event.at, conversation.started_at)
            _set_first_response(conversation)

    @staticmethod
    def _message(
        batch: _Batch,
        conversation: Conversation,
        event: _Event,
        role: str,
        **extra: Any,
    ) -> None:
        at = max(event.at, conversation.started_at)
        conversation.last_message_at = max(conversation.last_message_at, at)
        key = f"event:{event.position}"
        batch.stored.add(key)
        batch.session.add(
            ConversationMessage(
                conversation_pk=conversation.id,
                at=at,
                role=role,
                text=event.text,
                source_key=key,
                **extra,
            )
        )

    # ------------------------------------------------------------------ closing
    def close_idle(self, now: datetime) -> list[int]:
        """Ends conversations quiet for the policy's minutes with no open handoff; their ids."""
        cutoff = now - self.idle
        held = exists().where(
            Handoff.conversation_id == Conversation.conversation_id,
            Handoff.status.in_(OPEN_HANDOFF_STATUSES),
        )
        closed: list[int] = []
        while True:
            with self._sessions.begin() as session:
                rows = list(
                    session.scalars(
                        select(Conversation)
                        .where(
                            Conversation.ended_at.is_(None),
                            Conversation.last_message_at <= cutoff,
                            ~held,
                        )
                        .order_by(Conversation.id)
                        .limit(CLOSE_BATCH)
                    )
                )
                for conversation in rows:
                    _finish(session, conversation, now)
                closed.extend(row.id for row in rows)
            if len(rows) < CLOSE_BATCH:
                return closed

    def close(self, pk: int, now: datetime) -> bool:
        """Ends conversation `pk` now whatever its quiet time; False if unknown or ended."""
        with self._sessions.begin() as session:
            conversation = session.get(Conversation, pk)
            if conversation is None or conversation.ended_at is not None:
                return False
            _finish(session, conversation, now)
            return True


def _new_conversation(event: _Event) -> Conversation:
    return Conversation(
        conversation_id=event.sender,
        channel=event.channel or "unknown",
        language=event.language or "zh",
        source="live",
        started_at=event.at,
        last_message_at=event.at,
        customer_messages=0,
        bot_messages=0,
        agent_messages=0,
        kb_answers=0,
        fallbacks=0,
        agents=[],
        transfers=0,
        red_cards=0,
    )


def _set_first_response(conversation: Conversation) -> None:
    asked, replied = conversation.handoff_requested_at, conversation.first_agent_reply_at
    if asked is not None and replied is not None:
        conversation.first_response_seconds = max(0.0, (replied - asked).total_seconds())


def _finish(session: Session, conversation: Conversation, now: datetime) -> None:
    """Ends the conversation at its last message and fills what is known at the end."""
    conversation.ended_at = end = conversation.last_message_at
    start = conversation.started_at - SPAN_SLACK
    until = max(end, min(end + SPAN_SLACK, now))
    sender = conversation.conversation_id
    handoff = session.execute(
        select(Handoff.id, Handoff.ticket_id, Handoff.created_at)
        .where(Handoff.conversation_id == sender, Handoff.created_at.between(start, until))
        .order_by(Handoff.created_at, Handoff.id)
        .limit(1)
    ).first()
    ticket = session.execute(
        select(Ticket.id, Ticket.satisfaction)
        .where(Ticket.customer_id == sender, Ticket.created_at.between(start, until))
        .order_by(Ticket.created_at, Ticket.id)
        .limit(1)
    ).first()
    if handoff is not None:
        conversation.handoff_id = handoff.id
        if conversation.handoff_requested_at is None:
            conversation.handoff_requested_at = handoff.created_at
            _set_first_response(conversation)
        if ticket is None:
            ticket = session.execute(
                select(Ticket.id, Ticket.satisfaction).where(Ticket.id == handoff.ticket_id)
            ).first()
    if ticket is not None:
        conversation.ticket_id = ticket.id
        if ticket.satisfaction is not None:
            conversation.rating = ticket.satisfaction
    naive = (start.astimezone(UTC).replace(tzinfo=None), until.astimezone(UTC).replace(tzinfo=None))
    answered, rejected = session.execute(
        select(
            func.count(case((KbQuery.outcome == KbOutcome.answered, 1))),
            func.count(case((KbQuery.feedback == KbFeedback.not_solved, 1))),
        ).where(KbQuery.sender_id == sender, KbQuery.created_at.between(*naive))
    ).one()
    conversation.kb_answers = max(conversation.kb_answers or 0, int(answered or 0))
    actions = list(
        session.scalars(
            select(ConversationMessage.action)
            .where(
                ConversationMessage.conversation_pk == conversation.id,
                ConversationMessage.role == "bot",
            )
            .order_by(ConversationMessage.at, ConversationMessage.id)
        )
    )
    not_solved = bool(rejected) or any(a in NOT_SOLVED_RESPONSES for a in actions)
    failed = bool(actions) and actions[-1] in FAILING
    conversation.outcome = outcome_of(conversation, not_solved=not_solved, ended_failing=failed)


def outcome_of(conversation: Conversation, *, not_solved: bool, ended_failing: bool) -> str:
    """How the conversation ended: `handoff`, `ticket`, `abandoned`, `unresolved`, `self_service`.

    A person took part or was asked for: handoff; the bot opened a ticket: ticket; the bot
    never answered: abandoned; its last reply was a fallback or the customer said an answer
    did not solve it: unresolved; else the bot solved it alone.
    """
    if conversation.agent_messages or conversation.handoff_requested_at or conversation.handoff_id:
        return "handoff"
    if conversation.ticket_id is not None:
        return "ticket"
    if not conversation.bot_messages:
        return "abandoned"
    if ended_failing or not_solved:
        return "unresolved"
    return "self_service"
