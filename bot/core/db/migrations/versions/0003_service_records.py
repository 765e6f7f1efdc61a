"""Customer service records, tickets and their status history.

Revision ID: 0003_service_records
Revises: 0002_kb_queries
Create Date: 2026-11-22

Datetimes are naive UTC (`bot.core.db.models.UtcDateTime` converts at the edges), enums are
VARCHAR(20) like the earlier tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_service_records"
down_revision = "0002_kb_queries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Creates `service_records`, `tickets` and `ticket_events`."""
    op.create_table(
        "service_records",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("order_number", sa.String(20)),
        sa.Column("product", sa.String(120)),
        sa.Column("situation", sa.Text),
        sa.Column("problem", sa.Text),
        sa.Column("problem_since", sa.Date),
        sa.Column("implication", sa.Text),
        sa.Column("impacts", sa.JSON, nullable=False),
        sa.Column("need_payoff", sa.String(20)),
        sa.Column("need_points", sa.JSON, nullable=False),
        sa.Column("preferences", sa.JSON, nullable=False),
        sa.Column("special_requests", sa.JSON, nullable=False),
        sa.Column("skipped", sa.JSON, nullable=False),
        sa.Column("urgency", sa.String(20), nullable=False),
        sa.Column("complaint_grade", sa.String(20)),
        sa.Column("classification_reasons", sa.JSON, nullable=False),
        sa.Column("correction_rounds", sa.Integer, nullable=False),
        sa.Column("completeness", sa.Float, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("confirmation_due_at", sa.DateTime),
        sa.Column("due_at", sa.DateTime),
        sa.Column("confirmed_at", sa.DateTime),
        sa.Column("email", sa.String(254)),
    )
    op.create_index("ix_service_records_customer_id", "service_records", ["customer_id"])
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("number", sa.String(20), nullable=False),
        sa.Column("record_id", sa.Integer, nullable=False),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("urgency", sa.String(20), nullable=False),
        sa.Column("complaint_grade", sa.String(20)),
        sa.Column("due_at", sa.DateTime, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("resolved_at", sa.DateTime),
        sa.Column("satisfaction", sa.Integer),
        sa.Column("summary", sa.Text, nullable=False),
        sa.UniqueConstraint("number", name="uq_tickets_number"),
        sa.UniqueConstraint("record_id", name="uq_tickets_record_id"),
        sa.ForeignKeyConstraint(["record_id"], ["service_records.id"], name="fk_tickets_record_id"),
        sa.CheckConstraint(
            "satisfaction IS NULL OR satisfaction BETWEEN 1 AND 5",
            name="ck_tickets_satisfaction",
        ),
    )
    op.create_index("ix_tickets_customer_id", "tickets", ["customer_id"])
    op.create_table(
        "ticket_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("from_status", sa.String(20)),
        sa.Column("to_status", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("note", sa.Text),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name="fk_ticket_events_ticket_id"),
    )
    op.create_index("ix_ticket_events_ticket_id", "ticket_events", ["ticket_id"])


def downgrade() -> None:
    """Drops `ticket_events`, `tickets` and `service_records`."""
    op.drop_table("ticket_events")
    op.drop_table("tickets")
    op.drop_table("service_records")
