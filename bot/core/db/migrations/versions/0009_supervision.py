"""Supervision: recorded conversations, QA scores and findings, weekly review items, report runs.

Revision ID: 0009_supervision
Revises: 0008_service_loop
Create Date: 2026-12-07

New tables only (`bot.core.db.quality`); datetimes are naive UTC.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_supervision"
down_revision = "0008_service_loop"
branch_labels = None
depends_on = None


def _fk(column: str, target: str, name: str, nullable: bool = True) -> sa.Column[int]:
    return sa.Column(column, sa.Integer, sa.ForeignKey(target, name=name), nullable=nullable)


def upgrade() -> None:
    """Creates the five supervision tables and their indexes."""
    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("last_message_at", sa.DateTime, nullable=False),
        sa.Column("ended_at", sa.DateTime, nullable=True),
        sa.Column("customer_messages", sa.Integer, nullable=False),
        sa.Column("bot_messages", sa.Integer, nullable=False),
        sa.Column("agent_messages", sa.Integer, nullable=False),
        sa.Column("kb_answers", sa.Integer, nullable=False),
        sa.Column("fallbacks", sa.Integer, nullable=False),
        sa.Column("first_intent", sa.String(80), nullable=True),
        sa.Column("first_question", sa.Text, nullable=True),
        _fk("handoff_id", "handoffs.id", "fk_conversations_handoff_id"),
        _fk("ticket_id", "tickets.id", "fk_conversations_ticket_id"),
        _fk("agent_id", "agents.id", "fk_conversations_agent_id"),
        sa.Column("agents", sa.JSON, nullable=False),
        sa.Column("transfers", sa.Integer, nullable=False),
        sa.Column("handoff_requested_at", sa.DateTime, nullable=True),
        sa.Column("first_agent_reply_at", sa.DateTime, nullable=True),
        sa.Column("first_response_seconds", sa.Float, nullable=True),
        sa.Column("outcome", sa.String(20), nullable=True),
        sa.Column("rating", sa.Integer, nullable=True),
        sa.Column("bot_score", sa.Float, nullable=True),
        sa.Column("agent_score", sa.Float, nullable=True),
        sa.Column("red_cards", sa.Integer, nullable=False),
        sa.Column("scored_at", sa.DateTime, nullable=True),
    )
    op.create_index("ix_conversations_started_at", "conversations", ["started_at"])
    op.create_index("ix_conversations_ended_scored", "conversations", ["ended_at", "scored_at"])
    op.create_index(
        "ix_conversations_sender_ended", "conversations", ["conversation_id", "ended_at"]
    )
    op.create_index("ix_conversations_ticket_id", "conversations", ["ticket_id"])
    op.create_index("ix_conversations_agent_id", "conversations", ["agent_id"])
    op.create_table(
        "conversation_messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _fk(
            "conversation_pk",
            "conversations.id",
            "fk_conversation_messages_conversation_pk",
            nullable=False,
        ),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("author", sa.String(80), nullable=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("intent", sa.String(80), nullable=True),
        sa.Column("confidence", sa.Float, nullable=True),
        sa.Column("action", sa.String(80), nullable=True),
        sa.Column("source_key", sa.String(80), nullable=True),
        sa.UniqueConstraint("source_key", name="uq_conversation_messages_source_key"),
    )
    op.create_index(
        "ix_conversation_messages_conversation_pk", "conversation_messages", ["conversation_pk"]
    )
    op.create_table(
        "qa_scores",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _fk("conversation_pk", "conversations.id", "fk_qa_scores_conversation_pk", False),
        sa.Column("subject_key", sa.String(90), nullable=False),
        _fk("agent_id", "agents.id", "fk_qa_scores_agent_id"),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("points", sa.Integer, nullable=False),
        sa.Column("findings", sa.Integer, nullable=False),
        sa.Column("red_card", sa.Boolean, nullable=False),
        sa.Column("scored_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("conversation_pk", "subject_key", name="uq_qa_scores_subject"),
    )
    op.create_index("ix_qa_scores_conversation_pk", "qa_scores", ["conversation_pk"])
    op.create_index("ix_qa_scores_agent_scored", "qa_scores", ["agent_id", "scored_at"])
    op.create_index("ix_qa_scores_scored_at", "qa_scores", ["scored_at"])
    op.create_table(
        "qa_findings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _fk("conversation_pk", "conversations.id", "fk_qa_findings_conversation_pk", False),
        _fk("score_id", "qa_scores.id", "fk_qa_findings_score_id", False),
        sa.Column("subject_key", sa.String(90), nullable=False),
        _fk("agent_id", "agents.id", "fk_qa_findings_agent_id"),
        sa.Column("rule_id", sa.String(60), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("points", sa.Integer, nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("red_card", sa.Boolean, nullable=False),
        _fk("message_id", "conversation_messages.id", "fk_qa_findings_message_id"),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("appeal_status", sa.String(12), nullable=False),
        sa.Column("appeal_text", sa.Text, nullable=True),
        sa.Column("appealed_by", sa.String(64), nullable=True),
        sa.Column("appealed_at", sa.DateTime, nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decided_at", sa.DateTime, nullable=True),
        sa.Column("decision_note", sa.Text, nullable=True),
    )
    op.create_index("ix_qa_findings_conversation_pk", "qa_findings", ["conversation_pk"])
    op.create_index("ix_qa_findings_score_id", "qa_findings", ["score_id"])
    op.create_index("ix_qa_findings_agent_created", "qa_findings", ["agent_id", "created_at"])
    op.create_index("ix_qa_findings_appeal_status", "qa_findings", ["appeal_status"])
    op.create_index("ix_qa_findings_rule_created", "qa_findings", ["rule_id", "created_at"])
    op.create_table(
        "review_actions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(160), nullable=False),
        sa.Column("week_start", sa.Date, nullable=False),
        sa.Column("problem", sa.String(80), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("occurrences", sa.Integer, nullable=False),
        sa.Column("examples", sa.JSON, nullable=False),
        _fk("owner_id", "agents.id", "fk_review_actions_owner_id"),
        sa.Column("due_on", sa.Date, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=True),
        sa.Column("done_at", sa.DateTime, nullable=True),
        sa.UniqueConstraint("key", name="uq_review_actions_key"),
    )
    op.create_index("ix_review_actions_week_start", "review_actions", ["week_start"])
    op.create_index("ix_review_actions_status_due", "review_actions", ["status", "due_on"])
    op.create_table(
        "report_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("period", sa.String(10), nullable=False),
        sa.Column("path", sa.String(400), nullable=False),
        sa.Column("built_at", sa.DateTime, nullable=False),
        sa.Column("emailed_at", sa.DateTime, nullable=True),
        sa.Column("recipients", sa.JSON, nullable=False),
        sa.UniqueConstraint("key", name="uq_report_runs_key"),
    )


def downgrade() -> None:
    """Drops the supervision tables."""
    for table in (
        "report_runs",
        "review_actions",
        "qa_findings",
        "qa_scores",
        "conversation_messages",
        "conversations",
    ):
        op.drop_table(table)
