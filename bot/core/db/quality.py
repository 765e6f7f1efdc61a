"""Tables of supervision: recorded conversations, their QA scores and findings, review lists.

`bot.supervision` writes them: the recorder turns the event broker into `conversations` and
`conversation_messages`; the inspector scores each ended conversation once (`qa_scores`, one
row per subject: the bot, each agent) with its `qa_findings`; the weekly review writes
`review_actions`; every built or emailed report is a `report_runs` row. Datetimes are UTC.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.core.db.models import Base, UtcDateTime

GENERATED = "generated"
"""`conversations.source` and `kb_queries.index_version` of generated rows (`kefu demo-day`, the
benchmark): reports show them, labelled; the knowledge editors' queues never take them."""


class Conversation(Base):
    """One conversation of a customer with Kefu, from its first message until it went quiet.

    `conversation_id` is Rasa's sender id; a customer (a permanent WeChat id) has many rows.
    A conversation ends after the policy's `supervision.conversation_idle_minutes` without a
    message while no handoff is open; then it is scored (`scored_at`).
    `outcome`: `self_service` (the bot solved it alone), `handoff` (a person took part),
    `unresolved` (the bot could not help and no person came), `abandoned` (no bot answer).
    `source` is `live` (the event broker) or `generated` (`kefu demo day`, the benchmark).
    """

    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_started_at", "started_at"),
        Index("ix_conversations_ended_scored", "ended_at", "scored_at"),
        Index("ix_conversations_sender_ended", "conversation_id", "ended_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(20), default="live")
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_message_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    customer_messages: Mapped[int] = mapped_column(Integer, default=0)
    bot_messages: Mapped[int] = mapped_column(Integer, default=0)
    agent_messages: Mapped[int] = mapped_column(Integer, default=0)
    kb_answers: Mapped[int] = mapped_column(Integer, default=0)
    """Knowledge-base answers the bot gave."""
    fallbacks: Mapped[int] = mapped_column(Integer, default=0)
    """Times the bot said it did not understand or had no answer."""
    first_intent: Mapped[str | None] = mapped_column(String(80), default=None)
    """The first customer message's intent other than greet/affirm/deny..."""
    first_question: Mapped[str | None] = mapped_column(Text, default=None)
    """The first customer message that was not a greeting (for "top unanswered questions")."""
    handoff_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("handoffs.id", name="fk_conversations_handoff_id"), default=None
    )
    ticket_id: Mapped[int | None] = mapped_column(
        Integer,
        ForeignKey("tickets.id", name="fk_conversations_ticket_id"),
        default=None,
        index=True,
    )
    agent_id: Mapped[int | None] = mapped_column(
        Integer,
        ForeignKey("agents.id", name="fk_conversations_agent_id"),
        default=None,
        index=True,
    )
    """The last agent who wrote in it."""
    agents: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Usernames of every agent who wrote, in order of their first message."""
    transfers: Mapped[int] = mapped_column(Integer, default=0)
    handoff_requested_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    first_agent_reply_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    first_response_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    """From the handoff to the first agent message (None: no handoff or no reply)."""
    outcome: Mapped[str | None] = mapped_column(String(20), default=None)
    """Set when it ends: self_service, handoff, unresolved, abandoned."""
    rating: Mapped[int | None] = mapped_column(Integer, default=None)
    """The 1-5 satisfaction score given in or for this conversation."""
    bot_score: Mapped[float | None] = mapped_column(Float, default=None)
    agent_score: Mapped[float | None] = mapped_column(Float, default=None)
    """The lowest score of its agents (None: no agent took part)."""
    red_cards: Mapped[int] = mapped_column(Integer, default=0)
    scored_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)


class ConversationMessage(Base):
    """One message of a recorded conversation: `role` customer, bot, agent or system.

    `source_key` (`event:<broker position>`, `gen:<n>`) stores a message read twice once.
    """

    __tablename__ = "conversation_messages"
    __table_args__ = (UniqueConstraint("source_key", name="uq_conversation_messages_source_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_pk: Mapped[int] = mapped_column(
        Integer,
        ForeignKey("conversations.id", name="fk_conversation_messages_conversation_pk"),
        index=True,
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    role: Mapped[str] = mapped_column(String(10))
    author: Mapped[str | None] = mapped_column(String(80), default=None)
    """The agent's username for agent messages."""
    text: Mapped[str] = mapped_column(Text)
    intent: Mapped[str | None] = mapped_column(String(80), default=None)
    confidence: Mapped[float | None] = mapped_column(Float, default=None)
    action: Mapped[str | None] = mapped_column(String(80), default=None)
    """The bot action that said it (`utter_greet`, `action_kb_answer`...)."""
    source_key: Mapped[str | None] = mapped_column(String(80), default=None)


class QaScore(Base):
    """The QA score of one subject of a conversation: the bot, or one agent (`subject_key`).

    100 minus the points of its findings that were not overturned on appeal, floored at 0.
    """

    __tablename__ = "qa_scores"
    __table_args__ = (
        UniqueConstraint("conversation_pk", "subject_key", name="uq_qa_scores_subject"),
        Index("ix_qa_scores_agent_scored", "agent_id", "scored_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("conversations.id", name="fk_qa_scores_conversation_pk"), index=True
    )
    subject_key: Mapped[str] = mapped_column(String(90))
    """`bot` or `agent:<username>`."""
    agent_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("agents.id", name="fk_qa_scores_agent_id"), default=None
    )
    score: Mapped[float] = mapped_column(Float)
    points: Mapped[int] = mapped_column(Integer)
    findings: Mapped[int] = mapped_column(Integer)
    red_card: Mapped[bool] = mapped_column(Boolean, default=False)
    scored_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class QaFinding(Base):
    """One rule a subject broke in a conversation, with its evidence and its appeal.

    `appeal_status`: `none`, `pending` (the agent appealed), `upheld` or `overturned` (a
    supervisor decided; an overturned finding no longer counts in the score).
    """

    __tablename__ = "qa_findings"
    __table_args__ = (
        Index("ix_qa_findings_agent_created", "agent_id", "created_at"),
        Index("ix_qa_findings_appeal_status", "appeal_status"),
        Index("ix_qa_findings_rule_created", "rule_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("conversations.id", name="fk_qa_findings_conversation_pk"), index=True
    )
    score_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("qa_scores.id", name="fk_qa_findings_score_id"), index=True
    )
    subject_key: Mapped[str] = mapped_column(String(90))
    agent_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("agents.id", name="fk_qa_findings_agent_id"), default=None
    )
    rule_id: Mapped[str] = mapped_column(String(60))
    title: Mapped[str] = mapped_column(String(200))
    points: Mapped[int] = mapped_column(Integer)
    severity: Mapped[str] = mapped_column(String(10))
    """`minor`, `major` or `fatal`."""
    red_card: Mapped[bool] = mapped_column(Boolean, default=False)
    message_id: Mapped[int | None] = mapped_column(
        Integer,
        ForeignKey("conversation_messages.id", name="fk_qa_findings_message_id"),
        default=None,
    )
    """The message that shows it, when one does."""
    detail: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    appeal_status: Mapped[str] = mapped_column(String(12), default="none")
    appeal_text: Mapped[str | None] = mapped_column(Text, default=None)
    appealed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    appealed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    decided_by: Mapped[str | None] = mapped_column(String(64), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    decision_note: Mapped[str | None] = mapped_column(Text, default=None)
    conversation: Mapped[Conversation] = relationship(lazy="joined")


class ReviewAction(Base):
    """One item of a weekly review list: a problem, its owner, a due date and where it stands.

    `key` (`<week start>:<problem>`) makes building the same week's list twice add nothing;
    `status`: `open`, `doing`, `done` or `dropped`.
    """

    __tablename__ = "review_actions"
    __table_args__ = (
        UniqueConstraint("key", name="uq_review_actions_key"),
        Index("ix_review_actions_week_start", "week_start"),
        Index("ix_review_actions_status_due", "status", "due_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(160))
    week_start: Mapped[date] = mapped_column(Date)
    problem: Mapped[str] = mapped_column(String(80))
    """What kind: a QA rule id, `sla_missed:<tier>`, `unanswered`, `low_csat`, `manual`..."""
    title: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(Text)
    occurrences: Mapped[int] = mapped_column(Integer, default=0)
    examples: Mapped[list[int]] = mapped_column(JSON, default=list)
    """Ids of conversations that show the problem (a few)."""
    owner_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("agents.id", name="fk_review_actions_owner_id"), default=None
    )
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), default="open")
    note: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str | None] = mapped_column(String(64), default=None)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)


class ReportRun(Base):
    """A report built (and maybe emailed): `key` is `<kind>:<period>`, e.g. `daily:2026-12-06`."""

    __tablename__ = "report_runs"
    __table_args__ = (UniqueConstraint("key", name="uq_report_runs_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(10))
    """`daily`, `weekly` or `monthly`."""
    period: Mapped[str] = mapped_column(String(10))
    """`2026-12-06`, `2026-12-07` (week start) or `2026-12`."""
    path: Mapped[str] = mapped_column(String(400))
    built_at: Mapped[datetime] = mapped_column(UtcDateTime)
    emailed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
