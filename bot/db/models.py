"""Tables of the app database."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import JSON, Date, DateTime, Enum, Float, Integer, String, Text
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


class KbOutcome(str, enum.Enum):
    """What the bot did with a question it took to the knowledge base."""

    answered = "answered"
    suggested = "suggested"
    no_answer = "no_answer"


class KbFeedback(str, enum.Enum):
    """The customer's verdict on an answer ("did this solve it?")."""

    solved = "solved"
    not_solved = "not_solved"


class KbQuery(Base):
    """One customer question taken to the knowledge base, with what came back.

    Unanswered questions, low-confidence hits and "did not solve it" feedback are the
    knowledge editors' review material; answered-and-not-rejected ones give the
    self-service rate.
    """

    __tablename__ = "kb_queries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sender_id: Mapped[str] = mapped_column(String(128), index=True)
    channel: Mapped[str] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(8))
    query: Mapped[str] = mapped_column(Text)
    outcome: Mapped[KbOutcome] = mapped_column(Enum(KbOutcome, native_enum=False, length=20))
    entry_id: Mapped[str | None] = mapped_column(String(120))
    confidence: Mapped[float] = mapped_column(Float)
    top_hits: Mapped[list[dict[str, object]]] = mapped_column(JSON)
    index_version: Mapped[str] = mapped_column(String(80))
    feedback: Mapped[KbFeedback | None] = mapped_column(
        Enum(KbFeedback, native_enum=False, length=20)
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
