"""bot/editor/rolling_deploy.py: the successor process, HAProxy's admin socket, the choice."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.core.settings import Settings
from bot.editor import rolling_deploy
from bot.editor.rolling_deploy import (
    HAProxyAdmin,
    Instance,
    Stack,
    SwapError,
    put_in_service,
    replace_process,
    successor_command,
)
from bot.editor.rolling_deploy import (
    rolling_deploy as roll,
)

FAKE_RASA = """
import json, os, signal, sys, time
from pathlib import Path

args = sys.argv[1:]
model, port = args[args.index("--model") + 1], args[args.index("--port") + 1]
if "broken" in model:
    print("Could not load model due to nonsense.", flush=True)
    sys.exit(1)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
time.sleep(0.3)
record = Path(os.environ["KEFU_VAR_DIR"]) / "run" / f"rasa-{port}.json"
record.parent.mkdir(parents=True, exist_ok=True)
data = {"pid": os.getpid(), "model": model, "replaces": os.environ.get("KEFU_RASA_REPLACES"),
        "cpus": sorted(os.sched_getaffinity(0))}
record.with_suffix(".tmp").write_text(json.dumps(data))
os.replace(record.with_suffix(".tmp"), record)
while True:
    time.sleep(0.1)
"""


def test_the_successor_command_changes_only_rasas_model() -> None:
    python = ["/venv/bin/python", "-m", "rasa_addons.launch", "run"]
    assert successor_command([*python, "--model", "a.tar.gz", "--port", "5005"], Path("b")) == [
        *python,
        "--model",
        "b",
        "--port",
        "5005",
    ]
    assert successor_command([*python, "--model=a.tar.gz"], Path("b")) == [*python, "--model=b"]
    assert successor_command(python, Path("b")) == [*python, "--model", "b"]


@pytest.fixture
def old_rasa(tmp_path: Path) -> Iterator[tuple[Settings, subprocess.Popen[bytes]]]:
    """A stand-in Rasa that records itself like rasa_addons.reuse_port does."""
    script = tmp_path / "fake_rasa.py"
    script.write_text(FAKE_RASA)
    settings = Settings(var_dir=tmp_path / "var", rasa_port=5999)
    process = subprocess.Popen(
        [sys.executable, str(script), "run", "--model", "a.tar.gz", "--port", "5999"],
        env={**os.environ, "KEFU_VAR_DIR": str(settings.var_dir)},
    )
    record = rolling_deploy.record_path(settings)
    for _ in range(100):
        if rolling_deploy.recorded_pid(settings) == process.pid:
            break
        threading.Event().wait(0.1)
    assert record.is_file()
    yield settings, process
    pids = [process.pid, rolling_deploy.recorded_pid(settings)]
    for pid in pids:
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    process.wait()


def test_a_successor_starts_like_the_old_process_then_the_old_one_stops(
    old_rasa: tuple[Settings, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    settings, old = old_rasa
    new_pid = replace_process(settings, tmp_path / "b.tar.gz", old.pid)
    record = json.loads(rolling_deploy.record_path(settings).read_text())
    assert record == {
        "pid": new_pid,
        "model": str((tmp_path / "b.tar.gz").resolve()),
        "replaces": str(old.pid),
        "cpus": sorted(rolling_deploy.loading_cpus()),  # it loaded on the last core only
    }
    assert os.sched_getaffinity(new_pid) == os.sched_getaffinity(0)  # all cores once serving
    assert old.wait(10) == 0  # SIGTERM, and it exited


def test_a_loading_model_gets_the_last_core_and_leaves_the_others() -> None:
    assert rolling_deploy.loading_cpus({0, 1}) == {1}
    assert rolling_deploy.loading_cpus({0, 2, 3}) == {3}
    assert rolling_deploy.loading_cpus({5}) == {5}  # one core: it has to share


def test_a_successor_that_cannot_load_leaves_the_old_process_serving(
    old_rasa: tuple[Settings, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    settings, old = old_rasa
    with pytest.raises(SwapError, match=r"Could not load model.*keeps serving the previous"):
        replace_process(settings, tmp_path / "broken.tar.gz", old.pid)
    assert old.poll() is None
    assert rolling_deploy.recorded_pid(settings) == old.pid


STAT_HEADER = "# pxname,svname,scur,status,"


class FakeHAProxy:
    """A unix socket answering like HAProxy's runtime API; records every command."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.commands: list[str] = []
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _answer(self, command: str) -> str:
        if command == "show info":
            return "Name: HAProxy\n"
        if command == "show stat":
            rows = [
                f"{backend},{server},0,UP,"
                for backend in ("rasa", "rasa_socketio")
                for server in ("FRONTEND", "rasa1", "rasa2", "BACKEND")
            ]
            return "\n".join([STAT_HEADER, *rows]) + "\n"
        if command.startswith("set server rasa/nosuch"):
            return "No such server.\n"
        return "\n" if command.startswith(("set server", "shutdown sessions")) else "?\n"

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                command = connection.recv(4096).decode().strip()
                if not command.startswith("show"):
                    self.commands.append(command)
                connection.sendall(self._answer(command).encode())

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[FakeHAProxy]:
    fake = FakeHAProxy(tmp_path / "admin.sock")
    yield fake
    fake.close()


def test_the_admin_socket_reads_servers_and_reports_refusals(haproxy: FakeHAProxy) -> None:
    admin = HAProxyAdmin(haproxy.path)
    assert admin.server_stat("rasa", "rasa2")["scur"] == "0"
    assert admin.has_server("rasa_socketio", "rasa1")
    assert not admin.has_server("rasa_socketio", "rasa9")
    admin.set_state("rasa", "rasa1", "drain")
    with pytest.raises(SwapError, match="No such server"):
        admin.set_state("rasa", "nosuch", "drain")


def _fake_instances(
    monkeypatch: pytest.MonkeyPatch, refuse: str | None = None
) -> list[tuple[str, str]]:
    """Instances that load whatever they get (except `refuse` on one URL); the loads done."""
    loads: list[tuple[str, str]] = []
    serving: dict[str, str] = {}

    def put_model(url: str, token: str, model: Path, timeout: float = 0) -> None:
        if refuse and url.endswith(refuse) and "new" in model.name:
            raise SwapError("Rasa could not load it. It keeps serving the previous model.")
        loads.append((url, model.name))
        serving[url] = model.name

    monkeypatch.setattr(rolling_deploy, "put_model", put_model)
    monkeypatch.setattr(
        rolling_deploy, "instance_model", lambda i, token: serving.get(i.url, "old.tar.gz")
    )
    monkeypatch.setattr(
        rolling_deploy, "_answers_with", lambda i, token, model: serving.get(i.url) == model.name
    )
    return loads


def _stack(haproxy: FakeHAProxy) -> Stack:
    return Stack(
        haproxy.path,
        "rasa",
        (Instance("rasa1", "http://h:1"), Instance("rasa2", "http://h:2")),
    )


def test_instances_are_drained_loaded_and_put_back_one_at_a_time(
    haproxy: FakeHAProxy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    loads = _fake_instances(monkeypatch)
    roll(_stack(haproxy), "token", tmp_path / "new.tar.gz", tmp_path)
    assert loads == [("http://h:1", "new.tar.gz"), ("http://h:2", "new.tar.gz")]
    expected = []
    for server in ("rasa1", "rasa2"):
        expected += [
            f"set server rasa/{server} state drain",
            f"set server rasa_socketio/{server} state maint",
            f"shutdown sessions server rasa_socketio/{server}",
            f"set server rasa/{server} state ready",
            f"set server rasa_socketio/{server} state ready",
        ]
    assert haproxy.commands == expected


def test_a_refused_model_puts_the_switched_instances_back(
    haproxy: FakeHAProxy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    loads = _fake_instances(monkeypatch, refuse=":2")
    (tmp_path / "old.tar.gz").write_bytes(b"the model in service before")
    with pytest.raises(SwapError, match="put back"):
        roll(_stack(haproxy), "token", tmp_path / "new.tar.gz", tmp_path)
    assert loads == [("http://h:1", "new.tar.gz"), ("http://h:1", "old.tar.gz")]
    assert haproxy.commands[-2:] == [
        "set server rasa/rasa1 state ready",
        "set server rasa_socketio/rasa1 state ready",
    ]
    assert "set server rasa/rasa2 state ready" in haproxy.commands  # never left drained


def test_the_way_in_is_chosen_by_what_runs(
    haproxy: FakeHAProxy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = Settings(var_dir=tmp_path / "var", rasa_port=5998)
    calls: list[str] = []
    monkeypatch.setattr(rolling_deploy, "put_model", lambda url, *_: calls.append(url))
    monkeypatch.setattr(rolling_deploy, "rolling_deploy", lambda *_: calls.append("rolling"))
    monkeypatch.setattr(rolling_deploy, "replace_process", lambda *_: calls.append("successor"))
    assert put_in_service(settings, tmp_path / "m.tar.gz") == "in-place"

    record = rolling_deploy.record_path(settings)
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"pid": os.getpid()}))
    assert put_in_service(settings, tmp_path / "m.tar.gz") == "successor"

    stack_file = settings.var_dir / rolling_deploy.STACK_FILE
    stack_file.parent.mkdir(parents=True)
    stack_file.write_text(
        json.dumps(
            {
                "haproxy_admin_socket": str(haproxy.path),
                "backend": "rasa",
                "instances": [{"name": "rasa1", "url": "http://h:1", "port": 1, "pid": 1}],
            }
        )
    )
    assert put_in_service(settings, tmp_path / "m.tar.gz") == "rolling"
    assert calls == [settings.rasa_url, "successor", "rolling"]
