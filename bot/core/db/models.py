"""Tables of the app database."""

from __future__ import annotations

import enum
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    """Declarative base of every Kefu table."""


class OrderStatus(str, enum.Enum):
    """Where an order is in its life."""

    pending_payment = "pending_payment"
    paid = "paid"
    shipped = "shipped"
    delivered = "delivered"
    cancelled = "cancelled"
    refunding = "refunding"


class Order(Base):
    """A shop order, as the bot may tell the customer about it (demo data by default)."""

    __tablename__ = "orders"

    number: Mapped[str] = mapped_column(String(20), primary_key=True)
    customer_phone: Mapped[str] = mapped_column(String(20), index=True)
    product_zh: Mapped[str] = mapped_column(String(120))
    product_en: Mapped[str] = mapped_column(String(120))
    amount_cents: Mapped[int] = mapped_column(Integer)
    status: Mapped[OrderStatus] = mapped_column(Enum(OrderStatus, native_enum=False, length=20))
    carrier_zh: Mapped[str | None] = mapped_column(String(40))
    carrier_en: Mapped[str | None] = mapped_column(String(40))
    tracking_number: Mapped[str | None] = mapped_column(String(40))
    eta: Mapped[date | None] = mapped_column(Date)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class KbOutcome(str, enum.Enum):
    """What the bot did with a question it took to the knowledge base."""

    answered = "answered"
    suggested = "suggested"
    no_answer = "no_answer"


class KbFeedback(str, enum.Enum):
    """The customer's verdict on an answer ("did this solve it?")."""

    solved = "solved"
    not_solved = "not_solved"


class KbQuery(Base):
    """One customer question taken to the knowledge base, with what came back.

    Unanswered questions, low-confidence hits and "did not solve it" feedback are the
    knowledge editors' review material; answered-and-not-rejected ones give the
    self-service rate.
    """

    __tablename__ = "kb_queries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sender_id: Mapped[str] = mapped_column(String(128), index=True)
    channel: Mapped[str] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(8))
    query: Mapped[str] = mapped_column(Text)
    outcome: Mapped[KbOutcome] = mapped_column(Enum(KbOutcome, native_enum=False, length=20))
    entry_id: Mapped[str | None] = mapped_column(String(120))
    confidence: Mapped[float] = mapped_column(Float)
    top_hits: Mapped[list[dict[str, object]]] = mapped_column(JSON)
    index_version: Mapped[str] = mapped_column(String(80))
    feedback: Mapped[KbFeedback | None] = mapped_column(
        Enum(KbFeedback, native_enum=False, length=20)
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class UtcDateTime(TypeDecorator[datetime]):
    """A UTC instant: stored as a naive UTC `DateTime`, like every Kefu table, read back aware.

    Binding a naive datetime raises `ValueError` (an instant without a zone is ambiguous);
    aware datetimes of any zone are converted to UTC. Values read back carry `timezone.utc`,
    on SQLite and PostgreSQL alike.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Converts an aware datetime to naive UTC for storage."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"A timezone-aware datetime is required, got naive {value!r}.")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Marks a stored naive UTC datetime as UTC."""
        return None if value is None else value.replace(tzinfo=timezone.utc)


class UrgencyTier(str, enum.Enum):
    """How fast a customer's need must be handled (decided by `bot.service.policy`)."""

    urgent = "urgent"
    normal = "normal"
    consultation = "consultation"


class ComplaintGrade(str, enum.Enum):
    """How serious a complaint is (complaints only)."""

    general = "general"
    major = "major"


class TicketStatus(str, enum.Enum):
    """Where a ticket is in its life (`ALLOWED_TRANSITIONS` in `bot.service.tickets`)."""

    open = "open"
    pending_agent = "pending_agent"
    in_progress = "in_progress"
    waiting_customer = "waiting_customer"
    resolved = "resolved"
    closed = "closed"


class ServiceRecord(Base):
    """A customer's need as the bot recorded it (SPIN answers, preferences, classification).

    Written by `bot.service.tickets.TicketStore.save_record` from a
    `bot.service.records.RecordDraft`; confirmed by the customer, it gets exactly one `Ticket`.
    Datetimes are UTC (`UtcDateTime`).
    """

    __tablename__ = "service_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(128), index=True)
    channel: Mapped[str] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(8))
    category: Mapped[str] = mapped_column(String(40))
    order_number: Mapped[str | None] = mapped_column(String(20))
    product: Mapped[str | None] = mapped_column(String(120))
    situation: Mapped[str | None] = mapped_column(Text)
    problem: Mapped[str | None] = mapped_column(Text)
    problem_since: Mapped[date | None] = mapped_column(Date)
    implication: Mapped[str | None] = mapped_column(Text)
    impacts: Mapped[list[str]] = mapped_column(JSON)
    need_payoff: Mapped[str | None] = mapped_column(String(20))
    need_points: Mapped[list[str]] = mapped_column(JSON)
    preferences: Mapped[dict[str, str]] = mapped_column(JSON)
    special_requests: Mapped[list[str]] = mapped_column(JSON)
    skipped: Mapped[list[str]] = mapped_column(JSON)
    urgency: Mapped[UrgencyTier] = mapped_column(Enum(UrgencyTier, native_enum=False, length=20))
    complaint_grade: Mapped[ComplaintGrade | None] = mapped_column(
        Enum(ComplaintGrade, native_enum=False, length=20)
    )
    classification_reasons: Mapped[list[str]] = mapped_column(JSON)
    correction_rounds: Mapped[int] = mapped_column(Integer)
    completeness: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    confirmation_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    email: Mapped[str | None] = mapped_column(String(254))


class Ticket(Base):
    """The work item opened when a customer confirms a `ServiceRecord` (one per record).

    `number` is `TK` + the UTC creation date (yyyymmdd) + a 4-digit daily sequence.
    """

    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("number", name="uq_tickets_number"),
        UniqueConstraint("record_id", name="uq_tickets_record_id"),
        CheckConstraint(
            "satisfaction IS NULL OR satisfaction BETWEEN 1 AND 5",
            name="ck_tickets_satisfaction",
        ),
        Index("ix_tickets_status_due_at", "status", "due_at"),
        Index("ix_tickets_created_at", "created_at"),
        Index("ix_tickets_status_resolved_at", "status", "resolved_at"),
        Index("ix_tickets_updated_at", "updated_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(20))
    record_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("service_records.id", name="fk_tickets_record_id")
    )
    customer_id: Mapped[str] = mapped_column(String(128), index=True)
    channel: Mapped[str] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(8))
    status: Mapped[TicketStatus] = mapped_column(Enum(TicketStatus, native_enum=False, length=20))
    urgency: Mapped[UrgencyTier] = mapped_column(Enum(UrgencyTier, native_enum=False, length=20))
    complaint_grade: Mapped[ComplaintGrade | None] = mapped_column(
        Enum(ComplaintGrade, native_enum=False, length=20)
    )
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    satisfaction: Mapped[int | None] = mapped_column(Integer)
    summary: Mapped[str] = mapped_column(Text)
    # ---- the service loop (issue 19): SLA clock, owner, progress and result
    response_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    """First response due (the tier's or complaint grade's window); `due_at` is this until
    an agent first answers, then `resolution_due_at`."""
    resolution_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    first_responded_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    sla_state: Mapped[str] = mapped_column(String(20), default="ok")
    """`ok`, `at_risk` (past the policy's share of the window) or `breached`."""
    sla_check_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None, index=True)
    """When the SLA clock must look at this ticket next (at-risk or breach moment); None when
    finished. Indexed: a scheduler pass reads only what is due."""
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    assignee_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("agents.id", name="fk_tickets_assignee_id"), default=None, index=True
    )
    supervisor_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("agents.id", name="fk_tickets_supervisor_id"), default=None
    )
    last_progress_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    """When the customer last heard how the case is going (an update or a notice)."""
    next_progress_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None, index=True)
    """When the automatic progress notice is due; None when finished. Indexed."""
    result: Mapped[str | None] = mapped_column(Text, default=None)
    """What was done (written on resolving; sent to the customer)."""
    improvement: Mapped[str | None] = mapped_column(Text, default=None)
    """The improvement measure taken, if any (sent with the result)."""
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)


class TicketEventKind(str, enum.Enum):
    """What a ticket history entry records."""

    status = "status"
    rating = "rating"
    note = "note"
    """Internal: agents and supervisors only."""
    progress = "progress"
    """A progress update the customer was sent."""
    customer = "customer"
    """Something the customer added (information, a message while waiting)."""
    assignment = "assignment"
    notice = "notice"
    """An automatic message to the customer (progress notice, result, CSAT, follow-up)."""
    sla = "sla"
    """An at-risk warning, a breach or an escalation."""


class TicketEvent(Base):
    """One entry of a ticket's history: a status change, a note, an update... (`kind`).

    Entries that do not change the status have from = to status.
    """

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("tickets.id", name="fk_ticket_events_ticket_id"), index=True
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    from_status: Mapped[TicketStatus | None] = mapped_column(
        Enum(TicketStatus, native_enum=False, length=20)
    )
    to_status: Mapped[TicketStatus] = mapped_column(
        Enum(TicketStatus, native_enum=False, length=20)
    )
    actor: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[TicketEventKind] = mapped_column(
        Enum(TicketEventKind, native_enum=False, length=20), default=TicketEventKind.status
    )
    visible_to_customer: Mapped[bool] = mapped_column(Boolean, default=False)


class AgentRole(str, enum.Enum):
    """What a desk account may do.

    Agents serve customers; editors edit knowledge; supervisors see every ticket, the SLA
    alerts and the second follow-ups; admins do everything.
    """

    agent = "agent"
    editor = "editor"
    supervisor = "supervisor"
    admin = "admin"


class Agent(Base):
    """A human agent's desk account (`bot.accounts.agents.AgentStore`); the password is argon2."""

    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("username", name="uq_agents_username"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(40))
    display_name: Mapped[str] = mapped_column(String(80))
    role: Mapped[AgentRole] = mapped_column(Enum(AgentRole, native_enum=False, length=20))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    """When the desk last heard from this agent (its console's WebSocket): online or not."""
    email: Mapped[str | None] = mapped_column(String(254), default=None)
    """Where SLA alerts and follow-up tasks are emailed (supervisors)."""
    supervisor_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("agents.id", name="fk_agents_supervisor_id"), default=None
    )
    """The agent's team lead: supervisor of the tickets assigned to this agent."""


class DeskSession(Base):
    """A desk login: the cookie's token is stored only as its SHA-256 (`bot.accounts.sessions`)."""

    __tablename__ = "desk_sessions"
    __table_args__ = (UniqueConstraint("token_hash", name="uq_desk_sessions_token_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    agent_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("agents.id", name="fk_desk_sessions_agent_id"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    agent: Mapped[Agent] = relationship(lazy="joined")


class LoginAttempt(Base):
    """One desk login attempt; recent failures drive the lockout (shared by every worker)."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_username_at", "username", "at"),
        Index("ix_login_attempts_client_at", "client", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(80))
    client: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    succeeded: Mapped[bool] = mapped_column(Boolean)


class Customer(Base):
    """What Kefu knows of a customer, keyed by their conversation (sender) id on a channel."""

    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    channel: Mapped[str] = mapped_column(String(40))
    name: Mapped[str | None] = mapped_column(String(80))
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    vip: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str | None] = mapped_column(String(8))
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    advisor_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("agents.id", name="fk_customers_advisor_id"), default=None
    )
    """A VIP's dedicated advisor (an agent)."""
    next_checkin_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None, index=True)
    """When a VIP's monthly check-in is due; None for other customers. Indexed."""


class HandoffStatus(str, enum.Enum):
    """Where a handed-off conversation is: waiting, with an agent, or back with the bot."""

    queued = "queued"
    active = "active"
    resolved = "resolved"
    handed_back = "handed_back"


OPEN_HANDOFF_STATUSES = (HandoffStatus.queued, HandoffStatus.active)
"""A conversation has at most one handoff in these statuses: the bot is paused meanwhile."""


class Handoff(Base):
    """A conversation handed to the agents, with the packet the bot gathered (`bot.handoff`)."""

    __tablename__ = "handoffs"
    __table_args__ = (Index("ix_handoffs_status_due_at", "status", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(128), index=True)
    channel: Mapped[str] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(String(40))
    status: Mapped[HandoffStatus] = mapped_column(Enum(HandoffStatus, native_enum=False, length=20))
    ticket_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("tickets.id", name="fk_handoffs_ticket_id"), index=True
    )
    agent_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("agents.id", name="fk_handoffs_agent_id"), index=True
    )
    packet: Mapped[dict[str, Any]] = mapped_column(JSON)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ticket: Mapped[Ticket] = relationship(lazy="joined")
    agent: Mapped[Agent | None] = relationship(lazy="joined")


class MessageKind(str, enum.Enum):
    """Who wrote a message of a handoff; notes stay inside the desk."""

    customer = "customer"
    agent = "agent"
    bot = "bot"
    note = "note"
    system = "system"


class HandoffMessage(Base):
    """One message of a handed-off conversation as the desk shows it.

    `source_key` names where it came from (`event:<broker position>`, `packet:<n>`), so a
    message read twice from the event broker is stored once.
    """

    __tablename__ = "handoff_messages"
    __table_args__ = (UniqueConstraint("source_key", name="uq_handoff_messages_source_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    handoff_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("handoffs.id", name="fk_handoff_messages_handoff_id"), index=True
    )
    kind: Mapped[MessageKind] = mapped_column(Enum(MessageKind, native_enum=False, length=20))
    author: Mapped[str | None] = mapped_column(String(80))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    source_key: Mapped[str | None] = mapped_column(String(80))


class BrokerOffset(Base):
    """How far a consumer has read the event broker (committed with what it stored)."""

    __tablename__ = "broker_offsets"

    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ReviewSource(str, enum.Enum):
    """Where a review item came from: a knowledge-base miss or an agent's reply."""

    unanswered = "unanswered"
    suggested = "suggested"
    not_solved = "not_solved"
    agent_reply = "agent_reply"
    frequent_problem = "frequent_problem"
    """A question customers asked often this month (the monthly audit, `bot.supervision`)."""


class ReviewStatus(str, enum.Enum):
    """What the knowledge editors decided about a review item."""

    pending = "pending"
    approved = "approved"
    merged = "merged"
    rejected = "rejected"


class ReviewItem(Base):
    """A question (and maybe an agent's answer) waiting for the knowledge editors' review.

    Copied by `bot.editor.review.collect` from `kb_queries` (misses, "did not solve it") and
    from agents' replies in `handoff_messages`; `source_key` (`kb:<id>`, `handoff-msg:<id>`)
    makes copying idempotent. `decision` records what was written where (file, entry, intent).
    """

    __tablename__ = "review_items"
    __table_args__ = (
        UniqueConstraint("source_key", name="uq_review_items_source_key"),
        Index("ix_review_items_status_created_at", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_key: Mapped[str] = mapped_column(String(80))
    source: Mapped[ReviewSource] = mapped_column(Enum(ReviewSource, native_enum=False, length=20))
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8))
    customer_id: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(40))
    hit_entry_id: Mapped[str | None] = mapped_column(String(120))
    """The knowledge base's best hit for the question, if it had one."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    """When the customer asked (or the agent replied)."""
    collected_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[ReviewStatus] = mapped_column(Enum(ReviewStatus, native_enum=False, length=20))
    decided_by: Mapped[str | None] = mapped_column(String(40))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class CustomerAccount(Base):
    """One person across channels (`bot.customers`): the identities of `channel_identities`.

    `phone` and `email` are on file only when verified (a code, a shop login, an operator):
    never what a customer merely typed. Order details go to callers whose verified phone is
    the order's; need confirmations are emailed only to `email`.
    """

    __tablename__ = "customer_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ChannelIdentity(Base):
    """A namespaced sender id (`web:…`, `shop:…`, `wechat:…`, `telegram:…`) of one account."""

    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("identity", name="uq_channel_identities_identity"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identity: Mapped[str] = mapped_column(String(128))
    account_id: Mapped[int] = mapped_column(
        Integer,
        ForeignKey("customer_accounts.id", name="fk_channel_identities_account_id"),
        index=True,
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LinkCode(Base):
    """A one-time code proving that `identity` may join the account of `target_identity`.

    Only the code's SHA-256 is stored; it expires, is used once and takes few attempts.
    """

    __tablename__ = "customer_link_codes"
    __table_args__ = (Index("ix_customer_link_codes_identity", "identity"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identity: Mapped[str] = mapped_column(String(128))
    target_identity: Mapped[str] = mapped_column(String(128))
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class CustomerEmail(Base):
    """One email Kefu sent to an account (the daily limit of need confirmations)."""

    __tablename__ = "customer_emails"
    __table_args__ = (Index("ix_customer_emails_account_at", "account_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("customer_accounts.id", name="fk_customer_emails_account_id")
    )
    kind: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class NoticeStatus(str, enum.Enum):
    """Where a message of the outbox is (`bot.followups.outbox`)."""

    pending = "pending"
    sending = "sending"
    """Claimed by a worker (until `lease_until`); a crashed worker's claim expires."""
    sent = "sent"
    undeliverable = "undeliverable"
    """No channel could take it (WeChat window closed, no email or phone): an agent must."""
    cancelled = "cancelled"
    """No longer wanted (the ticket was resolved before a progress notice went out...)."""


class Notice(Base):
    """One message Kefu owes someone: the transactional outbox of the service loop.

    Written in the same transaction as the change that makes it due (a resolve writes the
    result notice); `key` is unique, so planning the same notice twice stores it once.
    Workers claim pending rows whose `due_at` has come, deliver, and mark them sent; a
    delivery to a conversation carries `notice:<id>` in the Rasa event's metadata, so a
    worker that finds an expired claim checks the tracker before sending again.
    """

    __tablename__ = "notices"
    __table_args__ = (
        UniqueConstraint("key", name="uq_notices_key"),
        Index("ix_notices_status_due_at", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(160))
    kind: Mapped[str] = mapped_column(String(30))
    """progress_update, progress_notice, result, csat, csat_reminder, second_followup,
    vip_checkin, acknowledgement, sla_at_risk, sla_breach, followup_task..."""
    audience: Mapped[str] = mapped_column(String(20))
    """`customer` (their conversation) or `staff` (desk alert and email)."""
    ticket_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("tickets.id", name="fk_notices_ticket_id"), index=True
    )
    conversation_id: Mapped[str | None] = mapped_column(String(128))
    channel: Mapped[str | None] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    buttons: Mapped[list[dict[str, str]] | None] = mapped_column(JSON, default=None)
    slots: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    """Slots set with the message (e.g. `rating_ticket` with the CSAT question)."""
    recipient_agent_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("agents.id", name="fk_notices_recipient_agent_id"), default=None
    )
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    """Sent during quiet hours too: an urgent case, or a message a person's action caused just
    now (an agent's update or resolve, the customer's rating)."""
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[NoticeStatus] = mapped_column(
        Enum(NoticeStatus, native_enum=False, length=20), default=NoticeStatus.pending
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    via: Mapped[str | None] = mapped_column(String(20), default=None)
    """How it went out: `rasa` (the customer's channel), `email`, `sms`, `desk`."""
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class FollowupOutcome(str, enum.Enum):
    """How a second follow-up ended."""

    solved = "solved"
    not_solved = "not_solved"
    unreachable = "unreachable"


class FollowupTask(Base):
    """A supervisor's second follow-up with an unhappy customer.

    Opened by a score at or below the policy's `unhappy_score`, due within its
    `second_followup_hours`; one per ticket and rating round (`key`).
    """

    __tablename__ = "followup_tasks"
    __table_args__ = (
        UniqueConstraint("key", name="uq_followup_tasks_key"),
        Index("ix_followup_tasks_done_due", "done_at", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(160))
    ticket_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("tickets.id", name="fk_followup_tasks_ticket_id"), index=True
    )
    score: Mapped[int] = mapped_column(Integer)
    assignee_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("agents.id", name="fk_followup_tasks_assignee_id"), default=None
    )
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    outcome: Mapped[FollowupOutcome | None] = mapped_column(
        Enum(FollowupOutcome, native_enum=False, length=20), default=None
    )
    note: Mapped[str | None] = mapped_column(Text, default=None)
    done_by: Mapped[str | None] = mapped_column(String(64), default=None)


class DeskAlert(Base):
    """A warning for the desk, raised once (`key` is unique).

    An SLA at risk or breached, a notice nobody could receive, a follow-up task opened or
    overdue, a waiting customer's message.
    """

    __tablename__ = "desk_alerts"
    __table_args__ = (
        UniqueConstraint("key", name="uq_desk_alerts_key"),
        Index("ix_desk_alerts_ack_created", "acknowledged_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(160))
    kind: Mapped[str] = mapped_column(String(30))
    """sla_at_risk, sla_breach, undeliverable, followup_overdue, followup_task, customer_message,
    qa_red_card (`bot.supervision`)"""
    severity: Mapped[str] = mapped_column(String(10))
    """`info`, `warning` or `critical`."""
    ticket_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("tickets.id", name="fk_desk_alerts_ticket_id"), index=True
    )
    agent_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("agents.id", name="fk_desk_alerts_agent_id"), default=None
    )
    """Who it is for (None: every supervisor and the ticket's assignee)."""
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), default=None)
