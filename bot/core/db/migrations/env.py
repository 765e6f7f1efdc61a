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
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # SQLite alters a table by copying it and dropping the old one, which fails while
        # other rows point at it and foreign keys are enforced: off for the migration (the
        # pragma only takes effect outside a transaction), checked and back on afterwards.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=sqlite,
    )
    with context.begin_transaction():
        context.run_migrations()
    if sqlite:
        connection.commit()
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()
        if broken:
            raise RuntimeError(f"The migration left rows pointing nowhere: {broken[:5]}")
engine.dispose()
