"""ServiceGroup with real child processes (tiny HTTP servers), not the Kefu stack."""

import sys
import time
from pathlib import Path

import pytest

from bot.bench.common import free_port
from bot.core.processes import Service, ServiceError, ServiceGroup
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
