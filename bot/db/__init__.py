"""The app database (SQLAlchemy 2 + Alembic): SQLite by default, PostgreSQL by URL."""

from bot.db.engine import make_engine, session_factory, upgrade
from bot.db.models import Base, Order, OrderStatus

__all__ = ["Base", "Order", "OrderStatus", "make_engine", "session_factory", "upgrade"]
