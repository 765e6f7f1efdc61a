"""Agent desk accounts, login sessions and login attempts.

Revision ID: 0004_desk_accounts
Revises: 0003_service_records
Create Date: 2026-11-22

Datetimes are naive UTC (`bot.core.db.models.UtcDateTime`), the role is VARCHAR(20) like the
other enums. Sessions store only the SHA-256 of their token.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_desk_accounts"
down_revision = "0003_service_records"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Creates `agents`, `desk_sessions` and `login_attempts`."""
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(40), nullable=False),
        sa.Column("display_name", sa.String(80), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("username", name="uq_agents_username"),
    )
    op.create_table(
        "desk_sessions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("agent_id", sa.Integer, nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("last_seen_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("token_hash", name="uq_desk_sessions_token_hash"),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name="fk_desk_sessions_agent_id"),
    )
    op.create_index("ix_desk_sessions_agent_id", "desk_sessions", ["agent_id"])
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(80), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("succeeded", sa.Boolean, nullable=False),
    )
    op.create_index("ix_login_attempts_username_at", "login_attempts", ["username", "at"])
    op.create_index("ix_login_attempts_client_at", "login_attempts", ["client", "at"])


def downgrade() -> None:
    """Drops `login_attempts`, `desk_sessions` and `agents`."""
    op.drop_table("login_attempts")
    op.drop_table("desk_sessions")
    op.drop_table("agents")
