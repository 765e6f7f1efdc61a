from pathlib import Path
from typing import Any

import pytest

from actions.handoff import handoff_store
from actions.knowledge import kb_log
from actions.orders import order_store
from actions.server import SelectiveDomainExecutor
from actions.service_plan import app_engine, ticket_store
from bot.core.db import engine as engine_module
from bot.core.settings import get_settings


def test_calls_without_a_domain_use_the_last_one_or_an_empty_one() -> None:
    executor = SelectiveDomainExecutor()
    assert executor.update_and_return_domain({}, "action_order_status") == {}
    domain = {"forms": {"order_status_form": {"required_slots": ["order_number"]}}}
    assert (
        executor.update_and_return_domain({"domain": domain}, "validate_order_status_form")
        == domain
    )
    assert executor.update_and_return_domain({}, "action_kb_feedback") == domain


def test_every_store_of_the_actions_shares_one_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []
    create_engine = engine_module.create_engine

    def recording(url: str, **options: Any) -> Any:
        made.append(url)
        return create_engine(url, **options)

    monkeypatch.setenv("KEFU_VAR_DIR", str(tmp_path))
    monkeypatch.setattr(engine_module, "create_engine", recording)
    stores = (app_engine, ticket_store, handoff_store, kb_log, order_store)
    for cached in (get_settings, *stores):
        cached.cache_clear()
    try:
        engine = app_engine()
        ticket_store(), handoff_store(), kb_log(), order_store()
        assert made == [get_settings().database_url]
        assert str(engine.url) == f"sqlite:///{tmp_path / 'data' / 'kefu.db'}"
    finally:
        for cached in (get_settings, *stores):
            cached.cache_clear()
