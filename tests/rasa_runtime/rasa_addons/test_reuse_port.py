"""`rasa_addons.reuse_port`: two Sanic servers on one port, the old one drained without a failure.

Small Sanic apps stand in for Rasa (the same server code, without a model to load).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rasa_addons import reuse_port

PROJECT = Path(__file__).resolve().parents[3]
SERVER = """
import asyncio, os, sys
from sanic import Sanic
from sanic.response import text
from rasa_addons import reuse_port

reuse_port.install_server()
app = Sanic("reuse_port_test")

@app.post("/")
async def answer(request):
    await asyncio.sleep(0.05)  # a reply takes a moment: some are in flight at the switch
    return text(str(os.getpid()))

app.run(host="127.0.0.1", port=int(sys.argv[1]), access_log=False)
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Servers:
    """Starts the stand-in servers; stops whatever is left."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.script = folder / "server.py"
        self.script.write_text(SERVER)
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, replaces: int | None = None) -> subprocess.Popen[bytes]:
        env = {**os.environ, "KEFU_VAR_DIR": str(self.folder), "PYTHONPATH": str(PROJECT)}
        env.pop(reuse_port.REPLACES_VARIABLE, None)
        if replaces is not None:
            env[reuse_port.REPLACES_VARIABLE] = str(replaces)
        process = subprocess.Popen(
            [sys.executable, str(self.script), str(self.port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.started.append(process)
        return process

    def recorded(self) -> int | None:
        record = reuse_port.read_record(reuse_port.record_path(self.folder, self.port))
        return None if record is None else int(record["pid"])

    def wait_recorded(self, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.recorded() != process.pid:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            assert time.monotonic() < deadline, "the server did not record itself"
            time.sleep(0.1)

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    running = Servers(tmp_path, _free_port())
    yield running
    running.stop_all()


class Customers:
    """Threads posting to the port non-stop over keep-alive connections; no retries."""

    def __init__(self, port: int, users: int = 4) -> None:
        self.url = f"http://127.0.0.1:{port}/"
        self.answers: list[tuple[float, str]] = []
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._post) for _ in range(users)]

    def _post(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                try:
                    response = client.post(self.url, content=b"hi")
                    response.raise_for_status()
                    self.answers.append((time.monotonic(), response.text))
                except httpx.HTTPError as error:
                    self.failures.append(repr(error))

    def __enter__(self) -> Customers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


def test_a_successor_takes_over_the_port_and_no_request_fails(servers: Servers) -> None:
    old = servers.start()
    servers.wait_recorded(old)
    with Customers(servers.port) as customers:
        time.sleep(1)
        new = servers.start(replaces=old.pid)
        servers.wait_recorded(new)
        time.sleep(1)  # both listen: the kernel spreads new connections over them
        old.send_signal(signal.SIGTERM)
        assert old.wait(30) == 0
        stopped = time.monotonic()
        time.sleep(1)
    assert customers.failures == []
    pids = {pid for _, pid in customers.answers}
    assert pids == {str(old.pid), str(new.pid)}
    assert {pid for at, pid in customers.answers if at > stopped} == {str(new.pid)}
    assert servers.recorded() == new.pid


def test_only_a_declared_successor_may_share_the_port(servers: Servers) -> None:
    first = servers.start()
    servers.wait_recorded(first)
    intruder = servers.start()
    assert intruder.wait(60) != 0
    output = intruder.stdout.read().decode() if intruder.stdout else ""
    assert "already in use" in output
    assert servers.recorded() == first.pid


def test_a_listener_with_so_reuseport_makes_the_port_busy() -> None:
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = int(listener.getsockname()[1])
        assert not reuse_port.port_is_free("127.0.0.1", port)
    assert reuse_port.port_is_free("127.0.0.1", port)
