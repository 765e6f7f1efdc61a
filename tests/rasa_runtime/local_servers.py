"""Throwaway redis-server and rabbitmq-server processes for tests (stdlib only: both runtimes).

Each runs in its own folder on a free loopback port and is stopped (with its whole process
group) by `stop()` / the context manager; `require_redis()` / `require_rabbitmq()` skip the
test with the apt command when the Debian package is missing. RabbitMQ runs as the
`rabbitmq` user (through runuser) when started as root, with its own node name, ports,
Erlang cookie, database and logs; only the shared epmd daemon outlives it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import pytest

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_redis() -> None:
    """Skips the test when redis-server is not installed."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")


def require_rabbitmq() -> None:
    """Skips the test when rabbitmq-server is not installed or cannot run here."""
    if not Path(RABBITMQ_SERVER).exists():
        pytest.skip("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
    if os.geteuid() == 0 and (shutil.which("runuser") is None or not _has_user("rabbitmq")):
        pytest.skip("running as root without runuser or the rabbitmq user")


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


class _Server:
    """A server process in its own process group and folder."""

    name = "server"

    def __init__(self, folder: Path | None = None, port: int | None = None) -> None:
        self._own_folder = folder is None
        self.folder = folder or Path(tempfile.mkdtemp(prefix=f"kefu-{self.name}-"))
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def _launch(self, command: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.folder / f"{self.name}.out").open("ab")
        with log:
            self.process = subprocess.Popen(
                command,
                cwd=self.folder,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                break
            if self._ready():
                return
            time.sleep(0.1)
        output = (self.folder / f"{self.name}.out").read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"{self.name} did not start on port {self.port}:\n{output}")

    def _ready(self) -> bool:
        raise NotImplementedError

    def stop(self, timeout: float = 20.0, *, keep_data: bool = False) -> None:
        """Stops the server and its children (TERM, then KILL); removes its folder unless
        `keep_data` (to start it again on the same port with the same data)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(5)
        if process is not None:
            _signal_group(process.pid, signal.SIGKILL)  # leftovers of the group, if any
        if self._own_folder and not keep_data:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> _Server:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class RedisServer(_Server):
    """`redis-server` without persistence; `url(db)` gives `redis://127.0.0.1:PORT/db`."""

    name = "redis"

    def start(self, timeout: float = 15.0) -> RedisServer:
        """Starts it and waits until it answers PING."""
        command = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.folder), "--daemonize", "no",
        ]  # fmt: skip
        self._launch(command)
        self._wait_ready(timeout)
        return self

    def url(self, db: int = 0) -> str:
        """The server's URL for database `db`."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def _ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False


class RabbitMqServer(_Server):
    """A private RabbitMQ node (no plugins); `url(queue)` gives its `amqp://` URL."""

    name = "rabbitmq"

    def start(self, timeout: float = 90.0) -> RabbitMqServer:
        """Starts the node and waits until it speaks AMQP (about 7 s here)."""
        folder = self.folder
        (folder / "enabled_plugins").write_text("[].\n")
        dist_port = free_port()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(folder),
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": f"kefu-test-{self.port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(folder / "log"),
            "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(folder / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(folder / "rabbitmq-env.conf"),
            "RABBITMQ_PID_FILE": str(folder / "rabbitmq.pid"),
        }
        command = [RABBITMQ_SERVER]
        if os.geteuid() == 0:
            user = pwd.getpwnam("rabbitmq")
            for path in [folder, *folder.iterdir()]:
                os.chown(path, user.pw_uid, user.pw_gid)
            runuser = shutil.which("runuser") or "runuser"
            command = [runuser, "-u", "rabbitmq", "--", "env", f"HOME={folder}", RABBITMQ_SERVER]
        self._launch(command, env)
        self._wait_ready(timeout)
        return self

    def url(self, queue: str = "kefu_events") -> str:
        """The event broker URL of `queue` on this node."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{queue}"

    def _ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as connection:
                connection.sendall(b"AMQP\x00\x00\x09\x01")
                return connection.recv(1) == b"\x01"  # a method frame: Connection.Start
        except OSError:
            return False
