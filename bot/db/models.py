"""Tables of the app database."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Date, DateTime, Enum, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of every Kefu table."""


class OrderStatus(str, enum.Enum):
    """Where an order is in its life."""

    pending_payment = "pending_payment"
    paid = "paid"
    shipped = "shipped"
    delivered = "delivered"
    cancelled = "cancelled"
    refunding = "refunding"


class Order(Base):
    """A shop order, as the bot may tell the customer about it (demo data by default)."""

    __tablename__ = "orders"

    number: Mapped[str] = mapped_column(String(20), primary_key=True)
    customer_phone: Mapped[str] = mapped_column(String(20), index=True)
    product_zh: Mapped[str] = mapped_column(String(120))
    product_en: Mapped[str] = mapped_column(String(120))
    amount_cents: Mapped[int] = mapped_column(Integer)
    status: Mapped[OrderStatus] = mapped_column(Enum(OrderStatus, native_enum=False, length=20))
    carrier_zh: Mapped[str | None] = mapped_column(String(40))
    carrier_en: Mapped[str | None] = mapped_column(String(40))
    tracking_number: Mapped[str | None] = mapped_column(String(40))
    eta: Mapped[date | None] = mapped_column(Date)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)
