"""Customers across channels: accounts, channel identities, link codes, sent emails.

Revision ID: 0007_customers
Revises: 0006_review_items
Create Date: 2026-12-07

An account is one person; its channel identities are namespaced sender ids (`web:…`,
`shop:…`, `wechat:…`, `telegram:…`). Link codes are stored as SHA-256 only. Datetimes are
naive UTC.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_customers"
down_revision = "0006_review_items"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Creates the accounts, channel identities, link codes and sent-email tables."""
    op.create_table(
        "customer_accounts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("phone", sa.String(20), nullable=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_customer_accounts_phone", "customer_accounts", ["phone"])
    op.create_table(
        "channel_identities",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("identity", sa.String(128), nullable=False),
        sa.Column(
            "account_id",
            sa.Integer,
            sa.ForeignKey("customer_accounts.id", name="fk_channel_identities_account_id"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("identity", name="uq_channel_identities_identity"),
    )
    op.create_index("ix_channel_identities_account_id", "channel_identities", ["account_id"])
    op.create_table(
        "customer_link_codes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("identity", sa.String(128), nullable=False),
        sa.Column("target_identity", sa.String(128), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
        sa.Column("used_at", sa.DateTime, nullable=True),
    )
    op.create_index("ix_customer_link_codes_identity", "customer_link_codes", ["identity"])
    op.create_table(
        "customer_emails",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "account_id",
            sa.Integer,
            sa.ForeignKey("customer_accounts.id", name="fk_customer_emails_account_id"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_customer_emails_account_at", "customer_emails", ["account_id", "at"])


def downgrade() -> None:
    """Drops what `upgrade` created."""
    op.drop_index("ix_customer_emails_account_at", "customer_emails")
    op.drop_table("customer_emails")
    op.drop_index("ix_customer_link_codes_identity", "customer_link_codes")
    op.drop_table("customer_link_codes")
    op.drop_index("ix_channel_identities_account_id", "channel_identities")
    op.drop_table("channel_identities")
    op.drop_index("ix_customer_accounts_phone", "customer_accounts")
    op.drop_table("customer_accounts")
