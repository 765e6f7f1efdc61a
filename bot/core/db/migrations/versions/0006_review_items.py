"""The knowledge editors' review queue: review_items.

Revision ID: 0006_review_items
Revises: 0005_handoffs
Create Date: 2026-11-23

Questions the knowledge base missed and agents' replies, copied for review. Datetimes are
naive UTC, enums VARCHAR(20).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_review_items"
down_revision = "0005_handoffs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Creates `review_items`."""
    op.create_table(
        "review_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source_key", sa.String(80), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("answer", sa.Text, nullable=True),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("hit_entry_id", sa.String(120), nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("collected_at", sa.DateTime, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("decided_by", sa.String(40), nullable=True),
        sa.Column("decided_at", sa.DateTime, nullable=True),
        sa.Column("decision", sa.JSON, nullable=True),
        sa.UniqueConstraint("source_key", name="uq_review_items_source_key"),
    )
    op.create_index("ix_review_items_status_created_at", "review_items", ["status", "created_at"])


def downgrade() -> None:
    """Drops what `upgrade` created."""
    op.drop_index("ix_review_items_status_created_at", "review_items")
    op.drop_table("review_items")
