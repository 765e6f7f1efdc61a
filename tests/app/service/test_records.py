from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.orm import Session

from bot.core.db import ServiceRecord, UrgencyTier, make_engine, upgrade
from bot.core.db.engine import MIGRATIONS_DIR
from bot.service.records import (
    REQUIRED_FIELDS,
    SPIN_FIELDS,
    RecordDraft,
    completeness,
    missing_fields,
)
from bot.service.tickets import RecordNotFound, TicketError, TicketStore
from tests.app.conftest import NOW, draft

NEW_TABLES = {"service_records", "tickets", "ticket_events"}


def alembic_config(url: str) -> Config:
    """The configuration `bot.core.db.engine.upgrade` uses."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migration_creates_and_drops_the_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/kefu.db"
    upgrade(url)
    assert tables(url) >= NEW_TABLES
    engine = make_engine(url)
    indexes = {i["name"] for i in inspect(engine).get_indexes("ticket_events")}
    engine.dispose()
    assert "ix_ticket_events_ticket_id" in indexes
    command.downgrade(alembic_config(url), "0002_kb_queries")
    assert not NEW_TABLES & tables(url)
    assert {"orders", "kb_queries"} <= tables(url)
    command.upgrade(alembic_config(url), "head")
    assert tables(url) >= NEW_TABLES


def test_full_draft_is_complete() -> None:
    full = draft()
    assert missing_fields(full) == []
    assert completeness(full) == 1.0
    assert len(REQUIRED_FIELDS) == 16


def test_declined_spin_answers_count_as_recorded() -> None:
    declined = draft(
        order_number=None,
        product=None,
        situation=None,
        problem=None,
        implication=None,
        impacts=[],
        need_payoff=None,
        skipped=list(SPIN_FIELDS),
    )
    assert completeness(declined) == 1.0
    not_asked = replace(declined, skipped=[])
    assert missing_fields(not_asked) == list(SPIN_FIELDS)
    assert completeness(not_asked) == 12 / 16


def test_only_spin_fields_can_be_declined() -> None:
    incomplete = draft(need_points=[], skipped=["need_points", "due_at"], due_at=None)
    assert missing_fields(incomplete) == ["need_points", "due_at"]


def test_missing_fields_lower_completeness_and_are_listed() -> None:
    partial = draft(
        preferences={"contact_channel": "phone", "contact_time": " ", "language": "zh"},
        due_at=None,
        created_at=None,
        need_points=[""],
        channel="",
    )
    assert missing_fields(partial) == [
        "channel",
        "need_points",
        "preferences.contact_time",
        "created_at",
        "due_at",
    ]
    assert completeness(partial) == 11 / 16
    bare = RecordDraft(customer_id="u", channel="rest", language="zh", category="problem")
    assert completeness(bare) == 5 / 16  # the four given + the default urgency
    assert "situation" in missing_fields(bare)


@pytest.mark.parametrize(
    "changes",
    [
        {"product": None, "situation": None},
        {"order_number": None, "situation": None},
        {"order_number": None, "product": None},
    ],
)
def test_situation_is_satisfied_by_order_product_or_text(changes: dict[str, None]) -> None:
    assert "situation" not in missing_fields(draft(**changes))
    assert "situation" in missing_fields(draft(order_number=None, product=None, situation=None))


def test_implication_is_satisfied_by_listed_impacts() -> None:
    assert "implication" not in missing_fields(draft(implication=None, impacts=["经济损失"]))
    assert "implication" in missing_fields(draft(implication=None, impacts=[]))


def test_save_record_inserts_then_corrects_one_row(store: TicketStore, engine: Engine) -> None:
    record_id = store.save_record(draft(due_at=None, created_at=None))
    stored = store.get_record(record_id)
    assert stored is not None
    assert stored.completeness == 15 / 16  # created_at filled on insert, due_at missing
    assert stored.created_at.tzinfo is not None
    created = stored.created_at
    correction = replace(
        RecordDraft.from_record(stored),
        problem="右耳也没有声音",
        due_at=NOW + timedelta(hours=4),
        correction_rounds=1,
        urgency=UrgencyTier.urgent,
        special_requests=["请先电话联系"],
        email="li@example.com",
        created_at=None,
    )
    assert store.save_record(correction, record_id) == record_id
    corrected = store.get_record(record_id)
    assert corrected is not None
    assert (corrected.problem, corrected.correction_rounds) == ("右耳也没有声音", 1)
    assert (corrected.urgency, corrected.completeness) == (UrgencyTier.urgent, 1.0)
    assert corrected.created_at == created  # kept when the correction does not name it
    assert corrected.special_requests == ["请先电话联系"]
    assert corrected.problem_since == date(2026, 11, 20)
    assert corrected.due_at == NOW + timedelta(hours=4)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(ServiceRecord)) == 1


def test_record_draft_round_trip(store: TicketStore) -> None:
    original = draft(special_requests=["周末勿扰"], skipped=["implication"], email="a@b.cn")
    stored = store.get_record(store.save_record(original))
    assert stored is not None
    assert RecordDraft.from_record(stored) == original


def test_datetimes_are_stored_as_utc(store: TicketStore) -> None:
    beijing = timezone(timedelta(hours=8))
    local = datetime(2026, 11, 22, 17, 30, tzinfo=beijing)
    stored = store.get_record(store.save_record(draft(created_at=local)))
    assert stored is not None
    assert stored.created_at == NOW and stored.created_at.tzinfo == timezone.utc


def test_save_record_refusals(store: TicketStore) -> None:
    with pytest.raises(TicketError, match="timezone-aware"):
        store.save_record(draft(due_at=datetime(2026, 11, 23, 9, 0)))
    with pytest.raises(TicketError, match="category is longer than 40"):
        store.save_record(draft(category="x" * 41))
    with pytest.raises(RecordNotFound):
        store.save_record(draft(), 12345)
    record_id = store.save_record(draft())
    with pytest.raises(TicketError, match="not a record of customer"):
        store.save_record(draft("someone-else"), record_id)


def test_long_product_names_are_shortened(store: TicketStore) -> None:
    stored = store.get_record(store.save_record(draft(product="耳机" * 100)))
    assert stored is not None and stored.product is not None
    assert len(stored.product) == 120 and stored.product.endswith("…")


@pytest.fixture
def store(engine: Engine) -> TicketStore:
    return TicketStore(engine)
