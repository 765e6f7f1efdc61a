"""The scale-out stack's settings, services and start order (no engines started)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bot.core.local_servers import free_port
from bot.core.processes import Service, ServiceError, ServiceGroup
from bot.core.scaleout import (
    make_engines,
    rasa_runtime_url,
    scaleout_services,
    scaleout_settings,
    stack_layout,
)
from bot.core.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path, rasa_instances=3, rasa_port=5005, actions_port=5055)


def test_every_store_moves_to_the_shared_engines(settings: Settings) -> None:
    engines = make_engines(settings)
    pg, redis = engines.postgres.port, engines.redis.port
    stack = scaleout_settings(settings, engines, broker="amqp")
    assert stack.database_url == f"postgresql+psycopg://postgres@127.0.0.1:{pg}/kefu"
    assert stack.tracker_store_url == f"postgresql+psycopg://postgres@127.0.0.1:{pg}/kefu_tracker"
    assert stack.event_broker_url == (
        f"amqp://guest:guest@127.0.0.1:{engines.rabbitmq.port}/kefu_events"
    )
    assert stack.lock_store_url == f"redis://127.0.0.1:{redis}/0"
    assert stack.socketio_redis_url == f"redis://127.0.0.1:{redis}/1"
    assert stack.channel_state_url == f"redis://127.0.0.1:{redis}/2"
    # the public ports stay: HAProxy takes them
    assert (stack.rasa_port, stack.actions_port) == (5005, 5055)
    sql = scaleout_settings(settings, engines, broker="sql")
    assert sql.event_broker_url == f"postgresql+psycopg://postgres@127.0.0.1:{pg}/kefu_events"


def test_engines_live_under_var_scaleout(settings: Settings) -> None:
    engines = make_engines(settings)
    ports = {engine.port for engine in engines.all}
    assert len(ports) == 3
    for engine in engines.all:
        # as root a private tmp folder may be swapped for /var/tmp; the name stays
        assert engine.requested_root == settings.var_dir / "scaleout" / engine.name


def test_rasa_reads_postgres_through_psycopg2() -> None:
    assert rasa_runtime_url("postgresql+psycopg://u@h:1/db") == "postgresql://u@h:1/db"
    assert rasa_runtime_url("sqlite:////x/y.db") == "sqlite:////x/y.db"


def test_each_instance_has_its_own_port_and_spool(settings: Settings, tmp_path: Path) -> None:
    stack = scaleout_settings(settings, make_engines(settings), broker="sql")
    layout = stack_layout(stack)
    services = scaleout_services(stack, tmp_path / "model.tar.gz", layout)
    names = [s.name for s in services]
    assert names == [
        "action1", "action2", "action3", "rasa1", "rasa2", "rasa3",
        "web", "followups", "supervision",
    ]  # fmt: skip
    rasa = [s for s in services if s.name.startswith("rasa")]
    ports = [s.command[s.command.index("--port") + 1] for s in rasa]
    assert ports == [str(u.port) for u in layout.rasa] and len(set(ports)) == 3
    spools = {s.env["KEFU_RASA_SPOOL_PATH"] for s in rasa}
    assert spools == {str(tmp_path / "scaleout" / f"rasa{k}" / "spool.db") for k in (1, 2, 3)}
    for service, port in zip(rasa, ports, strict=True):
        assert service.env["KEFU_TRACKER_STORE_URL"].startswith("postgresql://")
        assert service.env["KEFU_EVENT_BROKER_URL"].startswith("postgresql://")
        assert service.env["KEFU_ACTION_ENDPOINT_URL"] == "http://127.0.0.1:5055/webhook"
        assert service.health_url == f"http://127.0.0.1:{port}/"


def test_action_workers_default_to_one_per_instance(settings: Settings) -> None:
    assert len(stack_layout(settings).actions) == 3
    two = settings.model_copy(update={"action_workers": 2})
    assert [u.name for u in stack_layout(two).actions] == ["action1", "action2"]


def http_server(name: str, port: int) -> Service:
    return Service(
        name,
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        f"http://127.0.0.1:{port}/",
    )


def test_a_wave_starts_only_when_the_one_before_is_healthy(tmp_path: Path) -> None:
    silent = Service(
        "silent", [sys.executable, "-c", "import time; time.sleep(60)"], "http://127.0.0.1:9/"
    )
    later = http_server("later", free_port())
    group = ServiceGroup([silent, later], Settings(var_dir=tmp_path))
    with pytest.raises(ServiceError, match="Not healthy after"):
        group.start_waves([["silent"], ["later"]], timeout=2)
    assert later.process is None
    assert silent.process is not None and silent.process.poll() is not None


def test_waves_start_everything(tmp_path: Path) -> None:
    first, second = http_server("first", free_port()), http_server("second", free_port())
    group = ServiceGroup([first, second], Settings(var_dir=tmp_path))
    try:
        group.start_waves([["first"], ["second"]], timeout=60)
        assert first.is_healthy() and second.is_healthy()
    finally:
        group.stop()
