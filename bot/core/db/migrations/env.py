"""Alembic environment: migrates the URL given by `bot.core.db.upgrade` (or `alembic -x url=`)."""

from __future__ import annotations

from alembic import context

from bot.core.db.engine import make_engine
from bot.core.db.models import Base

config = context.config
url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
    "sqlalchemy.url"
)
if not url:
    raise RuntimeError("No database URL: call bot.core.db.upgrade(url).")

engine = make_engine(url)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
