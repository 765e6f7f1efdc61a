"""Starts the real Kefu stack (Rasa, action server, web service) on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.bench.common import free_port
from bot.db import make_engine, upgrade
from bot.knowledge import ensure_index
from bot.orders import seed_demo_orders
from bot.services import ServiceError, ServiceGroup, kefu_services
from bot.settings import Settings, get_settings
from bot.training import ensure_model

TOKEN = "e2e-test-token-0123456789"


@pytest.fixture(scope="session")
def stack_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceGroup]:
    """A running stack with a fresh database, tracker store and event broker."""
    model, _ = ensure_model(get_settings())
    var = tmp_path_factory.mktemp("var")
    (var / "webchat").symlink_to(get_settings().webchat_dir)
    settings = Settings(
        var_dir=var,
        rasa_port=free_port(),
        actions_port=free_port(),
        web_port=free_port(),
        rasa_token=TOKEN,
    )
    upgrade(settings.database_url)
    seed_demo_orders(make_engine(settings.database_url))
    ensure_index(settings)
    group = ServiceGroup(kefu_services(settings, model), settings)
    try:
        group.start()
    except ServiceError:
        for log in sorted((var / "logs").glob("*.log")):
            print(f"==> {log}\n{log.read_text()[-3000:]}")
        raise
    yield group
    group.stop()


@pytest.fixture(scope="session")
def stack(stack_group: ServiceGroup) -> Settings:
    """Settings of the running stack (URLs, ports, store URLs)."""
    return stack_group.settings
