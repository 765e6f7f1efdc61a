"""Handoffs to the agent desk: customers, handoffs, their messages, broker offsets.

Revision ID: 0005_handoffs
Revises: 0004_desk_accounts
Create Date: 2026-11-22

Also `agents.last_seen_at` (the desk's presence). Datetimes are naive UTC, enums VARCHAR(20).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_handoffs"
down_revision = "0004_desk_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Creates `customers`, `handoffs`, `handoff_messages`, `broker_offsets`."""
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("last_seen_at", sa.DateTime, nullable=True))
    op.create_table(
        "customers",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("name", sa.String(80), nullable=True),
        sa.Column("phone", sa.String(20), nullable=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("vip", sa.Boolean, nullable=False),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("first_seen_at", sa.DateTime, nullable=False),
        sa.Column("last_seen_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "handoffs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("ticket_id", sa.Integer, nullable=False),
        sa.Column("agent_id", sa.Integer, nullable=True),
        sa.Column("packet", sa.JSON, nullable=False),
        sa.Column("due_at", sa.DateTime, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("claimed_at", sa.DateTime, nullable=True),
        sa.Column("ended_at", sa.DateTime, nullable=True),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name="fk_handoffs_ticket_id"),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name="fk_handoffs_agent_id"),
    )
    op.create_index("ix_handoffs_conversation_id", "handoffs", ["conversation_id"])
    op.create_index("ix_handoffs_ticket_id", "handoffs", ["ticket_id"])
    op.create_index("ix_handoffs_agent_id", "handoffs", ["agent_id"])
    op.create_index("ix_handoffs_status_due_at", "handoffs", ["status", "due_at"])
    op.create_table(
        "handoff_messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("handoff_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("author", sa.String(80), nullable=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("source_key", sa.String(80), nullable=True),
        sa.ForeignKeyConstraint(
            ["handoff_id"], ["handoffs.id"], name="fk_handoff_messages_handoff_id"
        ),
        sa.UniqueConstraint("source_key", name="uq_handoff_messages_source_key"),
    )
    op.create_index("ix_handoff_messages_handoff_id", "handoff_messages", ["handoff_id"])
    op.create_table(
        "broker_offsets",
        sa.Column("consumer", sa.String(64), primary_key=True),
        sa.Column("position", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    """Drops what `upgrade` created."""
    op.drop_table("broker_offsets")
    op.drop_index("ix_handoff_messages_handoff_id", "handoff_messages")
    op.drop_table("handoff_messages")
    for index in ("status_due_at", "agent_id", "ticket_id", "conversation_id"):
        op.drop_index(f"ix_handoffs_{index}", "handoffs")
    op.drop_table("handoffs")
    op.drop_table("customers")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("last_seen_at")
