"""Knowledge-base questions, outcomes and feedback.

Revision ID: 0002_kb_queries
Revises: 0001_orders
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_kb_queries"
down_revision = "0001_orders"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Creates `kb_queries`."""
    op.create_table(
        "kb_queries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sender_id", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("query", sa.Text, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("entry_id", sa.String(120)),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("top_hits", sa.JSON, nullable=False),
        sa.Column("index_version", sa.String(80), nullable=False),
        sa.Column("feedback", sa.String(20)),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_kb_queries_sender_id", "kb_queries", ["sender_id"])
    op.create_index("ix_kb_queries_created_at", "kb_queries", ["created_at"])


def downgrade() -> None:
    """Drops `kb_queries`."""
    op.drop_table("kb_queries")
