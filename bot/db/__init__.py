"""The app database (SQLAlchemy 2 + Alembic): SQLite by default, PostgreSQL by URL."""

from bot.db.engine import make_engine, session_factory, upgrade
from bot.db.models import Base, KbFeedback, KbOutcome, KbQuery, Order, OrderStatus

__all__ = [
    "Base",
    "KbFeedback",
    "KbOutcome",
    "KbQuery",
    "Order",
    "OrderStatus",
    "make_engine",
    "session_factory",
    "upgrade",
]
