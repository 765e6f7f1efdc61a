"""ServiceGroup with real child processes (tiny HTTP servers), not the Kefu stack."""

import sys
import time
from pathlib import Path

import pytest

from bot.bench.common import free_port
from bot.core.processes import Service, ServiceError, ServiceGroup, kefu_services
from bot.core.settings import Settings


def http_server(name: str, port: int) -> Service:
    return Service(
        name,
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        f"http://127.0.0.1:{port}/",
    )


def test_start_waits_for_health_and_stop_ends_every_child(tmp_path: Path) -> None:
    services = [http_server("a", free_port()), http_server("b", free_port())]
    with ServiceGroup(services, Settings(var_dir=tmp_path)):
        assert all(s.is_healthy() for s in services)
        processes = [s.process for s in services]
    assert all(p is not None and p.poll() is not None for p in processes)
    assert (tmp_path / "logs" / "a.log").exists()


def test_a_child_that_dies_is_reported(tmp_path: Path) -> None:
    dying = Service("dying", [sys.executable, "-c", "raise SystemExit(3)"], "http://127.0.0.1:9/")
    group = ServiceGroup([dying], Settings(var_dir=tmp_path))
    with pytest.raises(ServiceError, match="dying exited with code 3"):
        group.start(timeout=30)


def test_restart_replaces_the_process(tmp_path: Path) -> None:
    service = http_server("web", free_port())
    with ServiceGroup([service], Settings(var_dir=tmp_path)) as group:
        before = service.process
        group.restart("web")
        assert service.process is not before and service.is_healthy()
        assert before is not None and before.poll() is not None


def test_unhealthy_service_times_out(tmp_path: Path) -> None:
    silent = Service(
        "silent", [sys.executable, "-c", "import time; time.sleep(60)"], "http://127.0.0.1:9/"
    )
    group = ServiceGroup([silent], Settings(var_dir=tmp_path))
    started = time.monotonic()
    with pytest.raises(ServiceError, match="Not healthy"):
        group.start(timeout=2)
    assert time.monotonic() - started < 20
    assert silent.process is not None and silent.process.poll() is not None


def test_secrets_reach_the_servers_by_environment_only(tmp_path: Path) -> None:
    settings = Settings(
        var_dir=tmp_path,
        rasa_token="rasa-token-for-tests-0123456789",
        action_token="action-token-for-tests-0123456789",
    )
    services = {s.name: s for s in kefu_services(settings, tmp_path / "model.tar.gz")}
    for service in services.values():
        for secret in (settings.rasa_token, settings.action_token):
            assert not [arg for arg in service.command if secret in arg], service.name
            health = service.health_url or ""
            assert secret not in health and "token" not in health
    rasa = services["rasa"]
    assert rasa.command[1:3] == ["-m", "rasa_addons.launch"]
    assert "--auth-token" not in rasa.command and "--enable-api" in rasa.command
    assert rasa.env["KEFU_RASA_TOKEN"] == settings.rasa_token
    assert rasa.env["KEFU_ACTION_TOKEN"] == settings.action_token  # endpoints.yml sends it
    assert rasa.env["SANIC_REQUEST_MAX_SIZE"] == "65536"
    assert services["actions"].env["KEFU_ACTION_TOKEN"] == settings.action_token
    assert services["actions"].env["SANIC_HOST"] == "127.0.0.1"


def test_the_health_check_of_rasa_needs_no_token(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, rasa_port=5005)
    rasa = next(s for s in kefu_services(settings, tmp_path / "m") if s.name == "rasa")
    assert rasa.health_url == "http://127.0.0.1:5005/"


def test_the_followup_scheduler_runs_as_a_service(tmp_path: Path) -> None:
    services = {s.name: s for s in kefu_services(Settings(var_dir=tmp_path), tmp_path / "m")}
    followups = services["followups"]
    assert followups.command[1:] == ["-m", "bot.cli.main", "followups", "serve"]
    assert followups.health_url is None


def test_the_supervision_worker_runs_as_a_service(tmp_path: Path) -> None:
    services = {s.name: s for s in kefu_services(Settings(var_dir=tmp_path), tmp_path / "m")}
    supervision = services["supervision"]
    assert supervision.command[1:] == ["-m", "bot.cli.main", "qa", "serve"]
    assert supervision.health_url is None
    assert supervision.env["PYTHONPATH"] == services["followups"].env["PYTHONPATH"]


def test_a_service_without_health_url_is_ready_while_it_runs(tmp_path: Path) -> None:
    worker = Service("worker", [sys.executable, "-c", "import time; time.sleep(60)"], None)
    assert not worker.is_healthy()  # not started
    with ServiceGroup([worker], Settings(var_dir=tmp_path)):
        assert worker.is_healthy()
        assert worker.process is not None
        worker.process.kill()
        worker.process.wait()
        assert not worker.is_healthy()
