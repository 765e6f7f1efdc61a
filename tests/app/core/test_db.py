from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bot.core.db import Base, make_engine, upgrade


def test_migrations_match_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/kefu.db"
    upgrade(url)
    upgrade(url)  # idempotent
    engine = make_engine(url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert diff == []


def test_the_service_loop_migration_keeps_existing_tickets(tmp_path: Path) -> None:
    """0008 on a database with a ticket: its due time becomes the response due, ratings a kind."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from bot.core.db.engine import MIGRATIONS_DIR

    url = f"sqlite:///{tmp_path}/old.db"
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "0007_customers")
    engine = make_engine(url)
    at = "2026-12-01 08:00:00"
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO service_records (id, customer_id, channel, language, category,"
                " impacts, need_points, preferences, special_requests, skipped, urgency,"
                " classification_reasons, correction_rounds, completeness, created_at)"
                " VALUES (1, 'web:a', 'web', 'zh', 'complaint', '[]', '[]', '{}', '[]', '[]',"
                " 'normal', '[]', 0, 1.0, :at)"
            ),
            {"at": at},
        )
        connection.execute(
            text(
                "INSERT INTO tickets (id, number, record_id, customer_id, channel, language,"
                " status, urgency, due_at, created_at, updated_at, satisfaction, summary)"
                " VALUES (1, 'TK202612010001', 1, 'web:a', 'web', 'zh', 'resolved', 'normal',"
                " '2026-12-01 12:00:00', :at, :at, 4, 'x')"
            ),
            {"at": at},
        )
        for note in ("service record 1 confirmed", "satisfaction 4/5"):
            connection.execute(
                text(
                    "INSERT INTO ticket_events (ticket_id, at, to_status, actor, note)"
                    " VALUES (1, :at, 'resolved', 'customer', :note)"
                ),
                {"at": at, "note": note},
            )
    upgrade(url)
    with engine.connect() as connection:
        due, state, reopened = connection.execute(
            text("SELECT response_due_at, sla_state, reopen_count FROM tickets")
        ).one()
        kinds = connection.execute(text("SELECT kind FROM ticket_events ORDER BY id")).all()
    engine.dispose()
    assert str(due).startswith("2026-12-01 12:00:00") and state == "ok" and reopened == 0
    assert [kind for (kind,) in kinds] == ["status", "rating"]
