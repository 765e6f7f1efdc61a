"""The app database (SQLAlchemy 2 + Alembic): SQLite by default, PostgreSQL by URL."""

from bot.db.engine import make_engine, session_factory, upgrade
from bot.db.models import (
    Base,
    ComplaintGrade,
    KbFeedback,
    KbOutcome,
    KbQuery,
    Order,
    OrderStatus,
    ServiceRecord,
    Ticket,
    TicketEvent,
    TicketStatus,
    UrgencyTier,
    UtcDateTime,
)

__all__ = [
    "Base",
    "ComplaintGrade",
    "KbFeedback",
    "KbOutcome",
    "KbQuery",
    "Order",
    "OrderStatus",
    "ServiceRecord",
    "Ticket",
    "TicketEvent",
    "TicketStatus",
    "UrgencyTier",
    "UtcDateTime",
    "make_engine",
    "session_factory",
    "upgrade",
]
