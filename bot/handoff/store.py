"""Handoffs in the app database: open, queue, claim, assign, messages, end; customers; presence.

Blocking SQLAlchemy: async callers use threads (`asyncio.to_thread`). A conversation has at
most one open (queued or active) handoff. Ticket status changes go through
`bot.service.tickets.TicketStore`, so the ticket's history records who did what.

A customer waiting for an agent (the handoff is still queued) is never met with silence: each
message they write goes on the ticket's history too, the first one is acknowledged once
(notice `ack:<handoff id>`), and a question about the ticket's progress is answered every
time (notice `status:<broker position>`). The notices are written in the transaction that
stores the message and the broker offset, so a batch read twice answers nothing twice;
delivering them is the outbox's job (`bot.followups`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, and_, func, or_, select, update
from sqlalchemy.orm import Session

from bot.core.db import (
    OPEN_HANDOFF_STATUSES,
    Agent,
    BrokerOffset,
    Customer,
    Handoff,
    HandoffMessage,
    HandoffStatus,
    KbQuery,
    MessageKind,
    NoticeStatus,
    Order,
    TicketEventKind,
    TicketStatus,
    session_factory,
)
from bot.service import notices
from bot.service.outbox import CUSTOMER, NewNotice, enqueue
from bot.service.tickets import InvalidTransition, TicketStore

MAX_TEXT = 2000
"""The longest agent message or note, in characters."""


class HandoffError(ValueError):
    """A handoff operation was refused; the message says why (shown to the agent)."""


class HandoffNotFound(HandoffError):
    """No handoff has this id."""


class HandoffConflict(HandoffError):
    """Someone else owns the handoff, or it has ended."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class NewMessage:
    """A message to store with a handoff; `source_key` makes storing it idempotent."""

    kind: MessageKind
    text: str
    created_at: datetime
    author: str | None = None
    source_key: str | None = None
    intent: str | None = None
    """What the NLU made of a customer's message (a progress question is answered)."""


STATUS_INTENTS = frozenset({"ask_ticket_progress"})
"""Intents of a waiting customer's message that get the ticket's status as the answer."""


@dataclass
class StoredBatch:
    """What `HandoffStore.store_batch` stored: new messages and the notices they owe."""

    messages: list[HandoffMessage]
    notice_ids: list[int]


class HandoffStore:
    """Reads and changes handoffs, their messages, customers and broker offsets."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)
        self.tickets = TicketStore(engine)

    # ------------------------------------------------------------------ opening
    def open(
        self,
        *,
        conversation_id: str,
        channel: str,
        language: str,
        reason: str,
        ticket_id: int,
        packet: dict[str, Any],
        due_at: datetime,
        opening: Sequence[NewMessage] = (),
    ) -> tuple[Handoff, bool]:
        """Opens a queued handoff; returns it and True, or the open one and False if one exists."""
        with self._sessions.begin() as session:
            existing = self._open_for(session, conversation_id)
            if existing is not None:
                return existing, False
            handoff = Handoff(
                conversation_id=conversation_id,
                channel=channel,
                language=language,
                reason=reason,
                status=HandoffStatus.queued,
                ticket_id=ticket_id,
                agent_id=None,
                packet=packet,
                due_at=due_at,
                created_at=_now(),
            )
            session.add(handoff)
            session.flush()
            for index, message in enumerate(opening):
                self._add(session, handoff.id, message, f"packet:{handoff.id}:{index}")
            session.flush()
            session.refresh(handoff)
            return handoff, True

    # ------------------------------------------------------------------ reading
    def get(self, handoff_id: int) -> Handoff | None:
        """The handoff with this id, or None."""
        with self._sessions() as session:
            return session.get(Handoff, handoff_id)

    def open_for(self, conversation_id: str) -> Handoff | None:
        """The conversation's queued or active handoff, or None."""
        with self._sessions() as session:
            return self._open_for(session, conversation_id)

    def latest_for(self, conversation_id: str) -> Handoff | None:
        """The conversation's newest handoff in any status, or None."""
        with self._sessions() as session:
            return session.scalars(
                select(Handoff)
                .where(Handoff.conversation_id == conversation_id)
                .order_by(Handoff.id.desc())
                .limit(1)
            ).first()

    def queue(self) -> list[Handoff]:
        """Open handoffs, the most pressing SLA first."""
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(Handoff)
                    .where(Handoff.status.in_(OPEN_HANDOFF_STATUSES))
                    .order_by(Handoff.due_at, Handoff.id)
                )
            )

    def position(self, handoff: Handoff) -> int | None:
        """1 + the queued handoffs due before this one; None if it is not queued."""
        if handoff.status != HandoffStatus.queued:
            return None
        with self._sessions() as session:
            ahead = session.scalar(
                select(func.count(Handoff.id)).where(
                    Handoff.status == HandoffStatus.queued,
                    or_(
                        Handoff.due_at < handoff.due_at,
                        and_(Handoff.due_at == handoff.due_at, Handoff.id < handoff.id),
                    ),
                )
            )
        return int(ahead or 0) + 1

    def messages(self, handoff_id: int) -> list[HandoffMessage]:
        """The handoff's messages, oldest first."""
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(HandoffMessage)
                    .where(HandoffMessage.handoff_id == handoff_id)
                    .order_by(HandoffMessage.created_at, HandoffMessage.id)
                )
            )

    def last_messages(self, handoff_ids: Iterable[int]) -> dict[int, HandoffMessage]:
        """The newest message that is not a note of each handoff."""
        ids = list(handoff_ids)
        if not ids:
            return {}
        with self._sessions() as session:
            newest = (
                select(func.max(HandoffMessage.id))
                .where(HandoffMessage.handoff_id.in_(ids), HandoffMessage.kind != MessageKind.note)
                .group_by(HandoffMessage.handoff_id)
            )
            rows = session.scalars(select(HandoffMessage).where(HandoffMessage.id.in_(newest)))
            return {message.handoff_id: message for message in rows}

    def latest_customer_text(self, handoff_id: int) -> str | None:
        """What the customer wrote last (for agent assist), or None."""
        with self._sessions() as session:
            return session.scalar(
                select(HandoffMessage.text)
                .where(
                    HandoffMessage.handoff_id == handoff_id,
                    HandoffMessage.kind == MessageKind.customer,
                )
                .order_by(HandoffMessage.id.desc())
                .limit(1)
            )

    # ------------------------------------------------------------------ messages
    def add_message(self, handoff_id: int, message: NewMessage) -> HandoffMessage | None:
        """Stores a message; None when its `source_key` was stored before."""
        _check_text(message.text)
        with self._sessions.begin() as session:
            if session.get(Handoff, handoff_id) is None:
                raise HandoffNotFound(f"No handoff {handoff_id}.")
            stored = self._add(session, handoff_id, message, message.source_key)
            session.flush()
            if stored is not None:
                session.refresh(stored)
            return stored

    def delete_message(self, message_id: int) -> None:
        """Removes a message (an agent reply Rasa did not take)."""
        with self._sessions.begin() as session:
            message = session.get(HandoffMessage, message_id)
            if message is not None:
                session.delete(message)

    def store_batch(
        self,
        consumer: str,
        position: str,
        messages: Sequence[tuple[int, NewMessage]],
    ) -> StoredBatch:
        """Stores messages read from the event broker and the consumer's new position, atomically.

        Messages whose `source_key` is already stored are skipped (a batch read twice after a
        crash stores nothing twice). A customer's message to a queued handoff also goes on the
        ticket's history and may owe an acknowledgement or a status answer (`_answer_waiting`).
        Returns the newly stored messages and the ids of the notices to deliver.
        """
        with self._sessions.begin() as session:
            keys = [m.source_key for _, m in messages if m.source_key]
            known = set(
                session.scalars(
                    select(HandoffMessage.source_key).where(HandoffMessage.source_key.in_(keys))
                )
            )
            stored = []
            notice_ids: list[int] = []
            for handoff_id, message in messages:
                if message.source_key in known:
                    continue
                known.add(message.source_key)
                row = self._add(session, handoff_id, message, message.source_key)
                stored.append(row)
                if row is not None and message.kind == MessageKind.customer:
                    answers = self._answer_waiting(session, handoff_id, message)
                    stored.extend(answer for answer, _ in answers)
                    notice_ids.extend(notice_id for _, notice_id in answers)
            offset = session.get(BrokerOffset, consumer)
            if offset is None:
                session.add(BrokerOffset(consumer=consumer, position=position, updated_at=_now()))
            else:
                offset.position = position
                offset.updated_at = _now()
            session.flush()
            result = [m for m in stored if m is not None]
            for row in result:
                session.refresh(row)
            return StoredBatch(result, notice_ids)

    def _answer_waiting(
        self, session: Session, handoff_id: int, message: NewMessage
    ) -> list[tuple[HandoffMessage | None, int]]:
        """A queued handoff's customer message: ticket history, and the notice it is owed.

        Returns the notices enqueued (at most one), each with the desk message that shows the
        agent what the customer was told.
        """
        handoff = session.get(Handoff, handoff_id)
        if handoff is None or handoff.status != HandoffStatus.queued:
            return []
        ticket = handoff.ticket
        now = _now()
        self.tickets.add_event(
            session,
            ticket,
            kind=TicketEventKind.customer,
            actor="customer",
            at=message.created_at,
            note=message.text[:MAX_TEXT],
            visible_to_customer=True,
        )
        ticket.updated_at = now
        policy = self.tickets.policy
        if message.intent in STATUS_INTENTS:
            key = f"status:{(message.source_key or '').removeprefix('event:') or now.timestamp()}"
            kind = notices.TICKET_STATUS
            text = notices.status_line(
                policy,
                number=ticket.number,
                status=ticket.status,
                due_at=ticket.due_at,
                summary=ticket.summary,
                language=handoff.language,
            )
        else:
            key, kind = f"ack:{handoff.id}", notices.ACKNOWLEDGEMENT
            text = notices.acknowledgement(
                policy, number=ticket.number, due_at=ticket.due_at, language=handoff.language
            )
        notice = enqueue(
            session,
            NewNotice(
                key=key,
                kind=kind,
                audience=CUSTOMER,
                text=text,
                due_at=now,
                language=handoff.language,
                ticket_id=ticket.id,
                conversation_id=handoff.conversation_id,
                channel=handoff.channel,
                urgent=True,  # it answers a message just sent: quiet hours do not apply
            ),
            now,
        )
        if notice is None:
            return []  # acknowledged before
        session.flush()
        shown = self._add(
            session, handoff.id, NewMessage(MessageKind.bot, text, now), f"notice:{notice.id}"
        )
        return [(shown, notice.id)]

    def record_rating_question(
        self, handoff_id: int, text: str, buttons: list[dict[str, str]]
    ) -> int | None:
        """Records the desk's own rating question as the ticket's sent satisfaction notice.

        Resolving a handoff asks the rating in the conversation itself; the outbox row
        (`csat:<ticket id>:<reopen round>`, status sent, via rasa) tells the scheduler that
        the question was asked, so it neither asks again nor counts it missing. Returns the
        notice id, or None when that round's question was recorded before.
        """
        now = _now()
        with self._sessions.begin() as session:
            handoff = self._get(session, handoff_id)
            ticket = handoff.ticket
            notice = enqueue(
                session,
                NewNotice(
                    key=f"csat:{ticket.id}:{ticket.reopen_count or 0}",
                    kind=notices.CSAT,
                    audience=CUSTOMER,
                    text=text,
                    due_at=now,
                    language=handoff.language,
                    ticket_id=ticket.id,
                    conversation_id=handoff.conversation_id,
                    channel=handoff.channel,
                    buttons=buttons,
                    slots={"rating_ticket": ticket.number},
                    status=NoticeStatus.sent,
                    via="rasa",
                ),
                now,
            )
            session.flush()
            return notice.id if notice is not None else None

    def offset(self, consumer: str) -> str | None:
        """How far `consumer` has read the event broker, or None before its first batch."""
        with self._sessions() as session:
            row = session.get(BrokerOffset, consumer)
            return row.position if row is not None else None

    # ------------------------------------------------------------------ ownership
    def claim(self, handoff_id: int, agent: Agent) -> Handoff:
        """The agent takes an unowned open handoff (or their own); the ticket goes in progress."""
        return self._set_owner(handoff_id, agent, only_if_unowned_by_others=True, actor=agent)

    def assign(self, handoff_id: int, to: Agent, by: Agent) -> Handoff:
        """Gives the handoff to `to` (queued: anyone may; active: the owner or an admin)."""
        return self._set_owner(handoff_id, to, only_if_unowned_by_others=False, actor=by)

    def _set_owner(
        self, handoff_id: int, owner: Agent, *, only_if_unowned_by_others: bool, actor: Agent
    ) -> Handoff:
        if not owner.active:
            raise HandoffError(f"{owner.username} is disabled.")
        with self._sessions.begin() as session:
            handoff = self._get(session, handoff_id)
            if handoff.status not in OPEN_HANDOFF_STATUSES:
                raise HandoffConflict("This conversation has already ended.")
            if only_if_unowned_by_others:
                if handoff.agent_id not in (None, owner.id):
                    raise HandoffConflict("Another agent has already claimed this conversation.")
            elif handoff.agent_id not in (None, actor.id) and actor.role.value != "admin":
                raise HandoffConflict("Only its agent or an admin may pass this conversation on.")
            previous = handoff.agent_id
            result = cast(
                "CursorResult[Any]",
                session.execute(
                    update(Handoff)
                    .where(
                        Handoff.id == handoff_id,
                        Handoff.status.in_(OPEN_HANDOFF_STATUSES),
                        Handoff.agent_id.is_(None)
                        if previous is None
                        else Handoff.agent_id == previous,
                    )
                    .values(
                        agent_id=owner.id,
                        status=HandoffStatus.active,
                        claimed_at=handoff.claimed_at or _now(),
                    )
                    .execution_options(synchronize_session=False)
                ),
            )
            if result.rowcount != 1:
                raise HandoffConflict("Someone changed this conversation meanwhile; try again.")
            ticket_number = handoff.ticket.number
        self._move_ticket(ticket_number, TicketStatus.in_progress, actor.username)
        return self._reload(handoff_id)

    def end(self, handoff_id: int, status: HandoffStatus, by: Agent) -> Handoff:
        """Resolves or hands back the handoff (its agent or an admin); the ticket follows."""
        if status not in (HandoffStatus.resolved, HandoffStatus.handed_back):
            raise ValueError(f"A handoff ends as resolved or handed_back, not {status.value}.")
        with self._sessions.begin() as session:
            handoff = self._get(session, handoff_id)
            if handoff.status not in OPEN_HANDOFF_STATUSES:
                raise HandoffConflict("This conversation has already ended.")
            if handoff.agent_id != by.id and by.role.value != "admin":
                raise HandoffConflict("Claim the conversation first.")
            handoff.status = status
            handoff.ended_at = _now()
            ticket_number = handoff.ticket.number
        if status == HandoffStatus.resolved:
            self._move_ticket(ticket_number, TicketStatus.in_progress, by.username)
            self._move_ticket(ticket_number, TicketStatus.resolved, by.username)
        else:
            self._move_ticket(
                ticket_number, TicketStatus.open, by.username, "handed back to the bot"
            )
        return self._reload(handoff_id)

    def _move_ticket(
        self, number: str, to: TicketStatus, actor: str, note: str | None = None
    ) -> None:
        ticket = self.tickets.find(number)
        if ticket is None or ticket.status == to:
            return
        try:
            self.tickets.transition(number, to, actor=actor, note=note)
        except InvalidTransition:
            return  # e.g. an agent closed the ticket from the CLI meanwhile: leave it

    # ------------------------------------------------------------------ agents and customers
    def touch_agent(self, agent_id: int) -> None:
        """Marks the agent as seen now (the desk's presence)."""
        with self._sessions.begin() as session:
            session.execute(update(Agent).where(Agent.id == agent_id).values(last_seen_at=_now()))

    def online_agents(self, window: timedelta) -> list[Agent]:
        """Active agents the desk heard from within `window`."""
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(Agent)
                    .where(Agent.active.is_(True), Agent.last_seen_at >= _now() - window)
                    .order_by(Agent.username)
                )
            )

    def agent(self, username: str) -> Agent | None:
        """The desk account with this username, or None."""
        with self._sessions() as session:
            return session.scalars(select(Agent).where(Agent.username == username)).first()

    def agents(self) -> list[Agent]:
        """Every active desk account."""
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(Agent).where(Agent.active.is_(True)).order_by(Agent.username)
                )
            )

    def customer(self, customer_id: str) -> Customer | None:
        """The customer with this id, or None."""
        with self._sessions() as session:
            return session.get(Customer, customer_id)

    def upsert_customer(
        self, customer_id: str, channel: str, *, language: str | None = None, **known: Any
    ) -> Customer:
        """Creates the customer or refreshes `last_seen_at`; fills fields still unknown."""
        now = _now()
        with self._sessions.begin() as session:
            customer = session.get(Customer, customer_id)
            if customer is None:
                customer = Customer(
                    id=customer_id,
                    channel=channel,
                    vip=bool(known.pop("vip", False)),
                    first_seen_at=now,
                    last_seen_at=now,
                    language=language,
                    **known,
                )
                session.add(customer)
            else:
                customer.last_seen_at = now
                customer.language = language or customer.language
                for name, value in known.items():
                    if getattr(customer, name) in (None, "") and value:
                        setattr(customer, name, value)
            session.flush()
            session.refresh(customer)
            return customer

    def set_vip(
        self,
        customer_id: str,
        vip: bool,
        channel: str = "unknown",
        advisor: Agent | None = None,
    ) -> Customer:
        """Marks (or unmarks) a customer as VIP, creating the customer if needed.

        `advisor` is the VIP's dedicated advisor (kept when None); unmarking drops the
        advisor and the monthly check-in.
        """
        with self._sessions.begin() as session:
            customer = session.get(Customer, customer_id)
            if customer is None:
                now = _now()
                customer = Customer(
                    id=customer_id, channel=channel, vip=vip, first_seen_at=now, last_seen_at=now
                )
                session.add(customer)
            customer.vip = vip
            if advisor is not None:
                customer.advisor_id = advisor.id
            if not vip:
                customer.advisor_id = customer.next_checkin_at = None
            session.flush()
            session.refresh(customer)
            return customer

    def phone_of_order(self, number: str) -> str | None:
        """The phone number the order was placed with, or None."""
        with self._sessions() as session:
            order = session.get(Order, number)
            return order.customer_phone if order is not None else None

    def kb_answers(self, conversation_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """The knowledge-base questions of the conversation (newest `limit`), oldest first."""
        with self._sessions() as session:
            rows = list(
                session.scalars(
                    select(KbQuery)
                    .where(KbQuery.sender_id == conversation_id)
                    .order_by(KbQuery.id.desc())
                    .limit(limit)
                )
            )
        return [
            {
                "at": row.created_at.replace(tzinfo=UTC)
                if row.created_at.tzinfo is None
                else row.created_at,
                "query": row.query,
                "outcome": row.outcome.value,
                "entry_id": row.entry_id,
                "confidence": row.confidence,
                "feedback": row.feedback.value if row.feedback else None,
            }
            for row in reversed(rows)
        ]

    # ------------------------------------------------------------------ helpers
    def _reload(self, handoff_id: int) -> Handoff:
        handoff = self.get(handoff_id)
        if handoff is None:
            raise HandoffNotFound(f"No handoff {handoff_id}.")
        return handoff

    @staticmethod
    def _get(session: Session, handoff_id: int) -> Handoff:
        handoff = session.get(Handoff, handoff_id)
        if handoff is None:
            raise HandoffNotFound(f"No handoff {handoff_id}.")
        return handoff

    @staticmethod
    def _open_for(session: Session, conversation_id: str) -> Handoff | None:
        return session.scalars(
            select(Handoff)
            .where(
                Handoff.conversation_id == conversation_id,
                Handoff.status.in_(OPEN_HANDOFF_STATUSES),
            )
            .order_by(Handoff.id.desc())
            .limit(1)
        ).first()

    @staticmethod
    def _add(
        session: Session, handoff_id: int, message: NewMessage, source_key: str | None
    ) -> HandoffMessage | None:
        if source_key is not None and session.scalar(
            select(HandoffMessage.id).where(HandoffMessage.source_key == source_key)
        ):
            return None
        stored = HandoffMessage(
            handoff_id=handoff_id,
            kind=message.kind,
            author=message.author[:80] if message.author else None,
            text=message.text,
            created_at=message.created_at,
            source_key=source_key,
        )
        session.add(stored)
        return stored


def _check_text(text: str) -> None:
    if not text.strip():
        raise HandoffError("The message is empty.")
    if len(text) > MAX_TEXT:
        raise HandoffError(f"The message is longer than {MAX_TEXT} characters.")
