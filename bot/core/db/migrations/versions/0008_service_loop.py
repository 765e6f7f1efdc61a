"""The service loop: ticket SLA clock and owner, history kinds, the outbox, follow-up tasks, alerts.

Revision ID: 0008_service_loop
Revises: 0007_customers
Create Date: 2026-12-07

Tickets get response and resolution due times, an SLA state with the next moment the clock
must look (`sla_check_at`, indexed), an assignee and supervisor, the next automatic progress
notice (`next_progress_at`, indexed), the result and improvement measure. Existing tickets
keep `due_at` as their response due time. Datetimes are naive UTC.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_service_loop"
down_revision = "0007_customers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Adds the columns and creates the notices, follow-up task and desk alert tables."""
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("email", sa.String(254), nullable=True))
        batch.add_column(sa.Column("supervisor_id", sa.Integer, nullable=True))
        batch.create_foreign_key("fk_agents_supervisor_id", "agents", ["supervisor_id"], ["id"])
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("response_due_at", sa.DateTime, nullable=True))
        batch.add_column(sa.Column("resolution_due_at", sa.DateTime, nullable=True))
        batch.add_column(sa.Column("first_responded_at", sa.DateTime, nullable=True))
        batch.add_column(sa.Column("sla_state", sa.String(20), nullable=False, server_default="ok"))
        batch.add_column(sa.Column("sla_check_at", sa.DateTime, nullable=True))
        batch.add_column(sa.Column("escalated_at", sa.DateTime, nullable=True))
        batch.add_column(sa.Column("assignee_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("supervisor_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("last_progress_at", sa.DateTime, nullable=True))
        batch.add_column(sa.Column("next_progress_at", sa.DateTime, nullable=True))
        batch.add_column(sa.Column("result", sa.Text, nullable=True))
        batch.add_column(sa.Column("improvement", sa.Text, nullable=True))
        batch.add_column(sa.Column("reopen_count", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("closed_at", sa.DateTime, nullable=True))
        batch.create_foreign_key("fk_tickets_assignee_id", "agents", ["assignee_id"], ["id"])
        batch.create_foreign_key("fk_tickets_supervisor_id", "agents", ["supervisor_id"], ["id"])
        batch.create_index("ix_tickets_sla_check_at", ["sla_check_at"])
        batch.create_index("ix_tickets_next_progress_at", ["next_progress_at"])
        batch.create_index("ix_tickets_assignee_id", ["assignee_id"])
        batch.create_index("ix_tickets_status_due_at", ["status", "due_at"])
        batch.create_index("ix_tickets_created_at", ["created_at"])
        batch.create_index("ix_tickets_status_resolved_at", ["status", "resolved_at"])
        batch.create_index("ix_tickets_updated_at", ["updated_at"])
    op.execute("UPDATE tickets SET response_due_at = due_at")
    with op.batch_alter_table("tickets") as batch:
        batch.alter_column("sla_state", server_default=None)
        batch.alter_column("reopen_count", server_default=None)
    op.create_index(
        "ix_service_records_confirmation_due_at", "service_records", ["confirmation_due_at"]
    )
    with op.batch_alter_table("ticket_events") as batch:
        batch.add_column(sa.Column("kind", sa.String(20), nullable=False, server_default="status"))
        batch.add_column(
            sa.Column("visible_to_customer", sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.execute("UPDATE ticket_events SET kind = 'rating' WHERE note LIKE 'satisfaction %'")
    with op.batch_alter_table("ticket_events") as batch:
        batch.alter_column("kind", server_default=None)
        batch.alter_column("visible_to_customer", server_default=None)
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("advisor_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("next_checkin_at", sa.DateTime, nullable=True))
        batch.create_foreign_key("fk_customers_advisor_id", "agents", ["advisor_id"], ["id"])
        batch.create_index("ix_customers_next_checkin_at", ["next_checkin_at"])
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(160), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("audience", sa.String(20), nullable=False),
        sa.Column(
            "ticket_id",
            sa.Integer,
            sa.ForeignKey("tickets.id", name="fk_notices_ticket_id"),
            nullable=True,
        ),
        sa.Column("conversation_id", sa.String(128), nullable=True),
        sa.Column("channel", sa.String(40), nullable=True),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("buttons", sa.JSON, nullable=True),
        sa.Column("slots", sa.JSON, nullable=True),
        sa.Column(
            "recipient_agent_id",
            sa.Integer,
            sa.ForeignKey("agents.id", name="fk_notices_recipient_agent_id"),
            nullable=True,
        ),
        sa.Column("urgent", sa.Boolean, nullable=False),
        sa.Column("due_at", sa.DateTime, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.DateTime, nullable=True),
        sa.Column("sent_at", sa.DateTime, nullable=True),
        sa.Column("via", sa.String(20), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("key", name="uq_notices_key"),
    )
    op.create_index("ix_notices_status_due_at", "notices", ["status", "due_at"])
    op.create_index("ix_notices_ticket_id", "notices", ["ticket_id"])
    op.create_table(
        "followup_tasks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(160), nullable=False),
        sa.Column(
            "ticket_id",
            sa.Integer,
            sa.ForeignKey("tickets.id", name="fk_followup_tasks_ticket_id"),
            nullable=False,
        ),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column(
            "assignee_id",
            sa.Integer,
            sa.ForeignKey("agents.id", name="fk_followup_tasks_assignee_id"),
            nullable=True,
        ),
        sa.Column("due_at", sa.DateTime, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("done_at", sa.DateTime, nullable=True),
        sa.Column("outcome", sa.String(20), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("done_by", sa.String(64), nullable=True),
        sa.UniqueConstraint("key", name="uq_followup_tasks_key"),
    )
    op.create_index("ix_followup_tasks_done_due", "followup_tasks", ["done_at", "due_at"])
    op.create_index("ix_followup_tasks_ticket_id", "followup_tasks", ["ticket_id"])
    op.create_table(
        "desk_alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(160), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column(
            "ticket_id",
            sa.Integer,
            sa.ForeignKey("tickets.id", name="fk_desk_alerts_ticket_id"),
            nullable=True,
        ),
        sa.Column(
            "agent_id",
            sa.Integer,
            sa.ForeignKey("agents.id", name="fk_desk_alerts_agent_id"),
            nullable=True,
        ),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("acknowledged_at", sa.DateTime, nullable=True),
        sa.Column("acknowledged_by", sa.String(64), nullable=True),
        sa.UniqueConstraint("key", name="uq_desk_alerts_key"),
    )
    op.create_index("ix_desk_alerts_ack_created", "desk_alerts", ["acknowledged_at", "created_at"])
    op.create_index("ix_desk_alerts_ticket_id", "desk_alerts", ["ticket_id"])


def downgrade() -> None:
    """Drops what `upgrade` created."""
    op.drop_table("desk_alerts")
    op.drop_table("followup_tasks")
    op.drop_table("notices")
    with op.batch_alter_table("customers") as batch:
        batch.drop_index("ix_customers_next_checkin_at")
        batch.drop_constraint("fk_customers_advisor_id", type_="foreignkey")
        batch.drop_column("next_checkin_at")
        batch.drop_column("advisor_id")
    op.drop_index("ix_service_records_confirmation_due_at", "service_records")
    with op.batch_alter_table("ticket_events") as batch:
        batch.drop_column("visible_to_customer")
        batch.drop_column("kind")
    with op.batch_alter_table("tickets") as batch:
        for index in (
            "ix_tickets_updated_at",
            "ix_tickets_status_resolved_at",
            "ix_tickets_created_at",
            "ix_tickets_status_due_at",
            "ix_tickets_assignee_id",
            "ix_tickets_next_progress_at",
            "ix_tickets_sla_check_at",
        ):
            batch.drop_index(index)
        batch.drop_constraint("fk_tickets_supervisor_id", type_="foreignkey")
        batch.drop_constraint("fk_tickets_assignee_id", type_="foreignkey")
        for column in (
            "closed_at", "reopen_count", "improvement", "result", "next_progress_at",
            "last_progress_at", "supervisor_id", "assignee_id", "escalated_at", "sla_check_at",
            "sla_state", "first_responded_at", "resolution_due_at", "response_due_at",
        ):  # fmt: skip
            batch.drop_column(column)
    with op.batch_alter_table("agents") as batch:
        batch.drop_constraint("fk_agents_supervisor_id", type_="foreignkey")
        batch.drop_column("supervisor_id")
        batch.drop_column("email")
