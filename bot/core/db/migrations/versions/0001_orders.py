"""Orders table.

Revision ID: 0001_orders
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_orders"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Creates `orders`."""
    op.create_table(
        "orders",
        sa.Column("number", sa.String(20), primary_key=True),
        sa.Column("customer_phone", sa.String(20), nullable=False, index=True),
        sa.Column("product_zh", sa.String(120), nullable=False),
        sa.Column("product_en", sa.String(120), nullable=False),
        sa.Column("amount_cents", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("carrier_zh", sa.String(40)),
        sa.Column("carrier_en", sa.String(40)),
        sa.Column("tracking_number", sa.String(40)),
        sa.Column("eta", sa.Date),
        sa.Column("delivered_at", sa.DateTime),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    """Drops `orders`."""
    op.drop_table("orders")
