"""The local engines: real redis-server, PostgreSQL, RabbitMQ and HAProxy in tmp folders.

Each test skips when its Debian package is missing (make install-scaleout installs them).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from bot.core.local_servers import (
    HAProxyServer,
    LocalServerError,
    PostgresServer,
    RabbitMQServer,
    RedisServer,
    common,
    ensure_installed,
    free_port,
    haproxy_config,
    missing_packages,
)
from bot.core.local_servers.haproxy import INSTANCE_HEADER, Upstream


def needs(package: str) -> None:
    """Skips the test when `package` is not installed."""
    if missing_packages([package]):
        pytest.skip(f"{package} is not installed (make install-scaleout)")


def group_gone(pid: int) -> bool:
    """True when no process of the group `pid` is left."""
    return not common.group_alive(pid)


def config(tmp_path: Path, rasa_ports: list[int]) -> str:
    return haproxy_config(
        host="127.0.0.1",
        rasa_port=free_port(),
        rasa=[Upstream(f"rasa{k}", "127.0.0.1", p) for k, p in enumerate(rasa_ports, 1)],
        actions_port=free_port(),
        actions=[Upstream("action1", "127.0.0.1", free_port())],
        admin_socket=tmp_path / "admin.sock",
    )


# ---------------------------------------------------------------- install


def test_nothing_is_installed_when_every_binary_is_there(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "find_binary", lambda name: f"/usr/bin/{name}")
    assert ensure_installed() == []


def test_a_missing_package_without_root_names_the_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(common, "find_binary", lambda name: None if name == "haproxy" else name)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(LocalServerError, match="apt-get install -y -qq haproxy"):
        ensure_installed()


# ---------------------------------------------------------------- haproxy


def test_the_config_balances_rest_and_pins_socketio(tmp_path: Path) -> None:
    text_ = config(tmp_path, [5101, 5102])
    assert "server rasa1 127.0.0.1:5101 check" in text_
    assert "server rasa2 127.0.0.1:5102 cookie rasa2 track rasa/rasa2" in text_
    assert "balance roundrobin" in text_ and "balance source" in text_
    assert "cookie KEFU_RASA insert indirect nocache" in text_
    assert "use_backend rasa_socketio if { path_beg /socket.io/ }" in text_
    assert "timeout tunnel 1h" in text_
    assert f"stats socket {tmp_path / 'admin.sock'} mode 600 level admin" in text_
    # a POST that reached Rasa is never sent again
    assert "retry-on conn-failure\n" in text_
    assert "empty-response" not in text_ and "response-timeout" not in text_


def test_haproxy_accepts_the_config(tmp_path: Path) -> None:
    needs("haproxy")
    path = tmp_path / "haproxy.cfg"
    path.write_text(config(tmp_path, [free_port(), free_port()]))
    result = subprocess.run(
        [common.require_binary("haproxy"), "-c", "-f", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def backends() -> Iterator[list[tuple[int, subprocess.Popen[bytes]]]]:
    """Two tiny HTTP servers standing in for Rasa instances."""
    started = []
    for _ in range(2):
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append((port, process))
    for port, _ in started:
        for _ in range(100):
            if common.port_open("127.0.0.1", port):
                break
            time.sleep(0.05)
    yield started
    for _, process in started:
        process.kill()
        process.wait()


def test_haproxy_alternates_and_survives_a_dead_backend(
    tmp_path: Path, backends: list[tuple[int, subprocess.Popen[bytes]]]
) -> None:
    needs("haproxy")
    port = free_port()
    cfg = haproxy_config(
        host="127.0.0.1",
        rasa_port=port,
        rasa=[Upstream(f"rasa{k}", "127.0.0.1", p) for k, (p, _) in enumerate(backends, 1)],
        actions_port=free_port(),
        actions=[Upstream("action1", "127.0.0.1", free_port())],
        admin_socket=tmp_path / "haproxy" / "admin.sock",
    )
    server = HAProxyServer(tmp_path / "haproxy", port, cfg)
    with server:
        deadline = time.monotonic() + 10
        while set(server.server_states().values()) != {"UP"}:
            assert time.monotonic() < deadline, server.server_states()
            time.sleep(0.2)
        seen = [httpx.get(f"{server.url}/").headers[INSTANCE_HEADER] for _ in range(4)]
        assert seen.count("rasa1") == 2 and seen.count("rasa2") == 2
        backends[0][1].kill()
        backends[0][1].wait()
        # before the health check notices, a refused connection is retried on rasa2
        answers = [httpx.get(f"{server.url}/") for _ in range(6)]
        assert [r.status_code for r in answers] == [200] * 6
        assert {r.headers[INSTANCE_HEADER] for r in answers} == {"rasa2"}
        # drain through the admin socket (what a rolling deploy does)
        assert server.admin("set server rasa/rasa2 state drain").strip() == ""
        assert server.server_states()["rasa2"] == "DRAIN"
        process = server.process
    assert process is not None and group_gone(process.pid)
    assert not server.admin_socket.exists()


# ---------------------------------------------------------------- redis, postgres, rabbitmq


def test_redis_answers_and_leaves_nothing(tmp_path: Path) -> None:
    needs("redis-server")
    with RedisServer(tmp_path / "redis", free_port()) as redis:
        with socket.create_connection((redis.host, redis.port)) as connection:
            connection.sendall(b"SET k v\r\nGET k\r\n")
            assert b"v" in connection.recv(64)
        process = redis.process
        assert redis.url == f"redis://127.0.0.1:{redis.port}/0"
    assert process is not None and group_gone(process.pid)


def test_postgres_keeps_its_data_across_restarts(tmp_path: Path) -> None:
    needs("postgresql")
    root = tmp_path / "postgres"
    postgres = PostgresServer(root, free_port())
    try:
        with postgres:
            postgres.create_databases("kefu", "kefu_tracker")
            postgres.create_databases("kefu")  # idempotent
            engine = create_engine(postgres.database_url("kefu", "psycopg"))
            with engine.begin() as connection:
                connection.execute(text("CREATE TABLE kept (id int)"))
                connection.execute(text("INSERT INTO kept VALUES (7)"))
            engine.dispose()
            first = postgres.process
        assert first is not None and group_gone(first.pid)
        with PostgresServer(root, free_port()) as again:
            engine = create_engine(again.database_url("kefu", "psycopg"))
            with engine.connect() as connection:
                assert connection.execute(text("SELECT id FROM kept")).scalar_one() == 7
            engine.dispose()
    finally:
        shutil.rmtree(postgres.root, ignore_errors=True)  # /var/tmp when tmp_path is private


def test_rabbitmq_speaks_amqp_and_stops_with_its_epmd(tmp_path: Path) -> None:
    needs("rabbitmq-server")
    rabbit = RabbitMQServer(tmp_path / "rabbitmq", free_port(), keep_data=False)
    with rabbit:
        assert rabbit.is_ready()
        assert rabbit.url == f"amqp://guest:guest@127.0.0.1:{rabbit.port}"
        node, epmd = rabbit.process, rabbit.epmd.process
    assert node is not None and group_gone(node.pid)
    assert epmd is not None and group_gone(epmd.pid)


def test_a_server_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    class Broken(RedisServer):
        def command(self) -> list[str]:
            return [sys.executable, "-c", "print('no luck'); raise SystemExit(4)"]

    with pytest.raises(LocalServerError, match=r"(?s)exited with code 4.*no luck"):
        Broken(tmp_path / "broken", free_port()).start()


def test_stop_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    class Stubborn(RedisServer):
        def command(self) -> list[str]:
            code = (
                "import pathlib, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "pathlib.Path('ready').touch(); time.sleep(60)"
            )
            return [sys.executable, "-c", code]

        def is_ready(self) -> bool:
            return (self.root / "ready").exists()

    server = Stubborn(tmp_path / "stubborn", free_port())
    server.start()
    process = server.process
    server.stop(grace=0.5)
    assert process is not None and process.returncode == -signal.SIGKILL
    assert group_gone(process.pid)
