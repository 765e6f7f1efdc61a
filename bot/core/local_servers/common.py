"""What every local server shares: finding and installing binaries, ports, start and stop."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from bot.core.running import Running

DEBIAN_PACKAGES: dict[str, str] = {
    "postgresql": "initdb",
    "redis-server": "redis-server",
    "rabbitmq-server": "rabbitmq-server",
    "haproxy": "haproxy",
}
"""Debian package -> a binary it installs (present means installed)."""

_SEARCH_PATH = os.pathsep.join(("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin"))


class LocalServerError(RuntimeError):
    """A local server is not installed, did not start, or did not stop."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that is free right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def find_binary(name: str) -> str | None:
    """The path of `name` on PATH, in the sbin folders or in Debian's PostgreSQL folder."""
    found = shutil.which(name) or shutil.which(name, path=_SEARCH_PATH)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def require_binary(name: str) -> str:
    """The path of `name`; raises `LocalServerError` naming the package when it is missing."""
    found = find_binary(name)
    if found is None:
        package = next((p for p, b in DEBIAN_PACKAGES.items() if b == name), name)
        raise LocalServerError(f"{name} not found: apt-get install {package} (or make install)")
    return found


def missing_packages(packages: Iterable[str] = DEBIAN_PACKAGES) -> list[str]:
    """The Debian packages among `packages` whose binary is not found."""
    return [package for package in packages if find_binary(DEBIAN_PACKAGES[package]) is None]


def ensure_installed(packages: Iterable[str] = DEBIAN_PACKAGES) -> list[str]:
    """Installs the missing packages with apt-get (as root); returns those it installed.

    Raises `LocalServerError` with the command to run when not root or apt-get fails.
    """
    missing = missing_packages(packages)
    if not missing:
        return []
    command = ["apt-get", "install", "-y", "-qq", *missing]
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise LocalServerError(
            f"Missing {', '.join(missing)}: run `sudo {' '.join(command)}` "
            "(or `sudo make install-scaleout`)."
        )
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for step in (["apt-get", "update", "-qq"], command):
        result = subprocess.run(
            step, env=environment, capture_output=True, text=True, check=False, timeout=900
        )
        if result.returncode != 0:
            raise LocalServerError(f"{' '.join(step)} failed:\n{result.stderr[-2000:]}")
    still = missing_packages(missing)
    if still:
        raise LocalServerError(f"apt-get installed nothing for {', '.join(still)}")
    return missing


def service_user(*names: str) -> pwd.struct_passwd | None:
    """When root: the first existing account of `names` to run a server as; else None."""
    if os.geteuid() != 0:
        return None
    for name in names:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise LocalServerError(f"Running as root, but none of the users {names} exists")


def reachable_root(root: Path, user: pwd.struct_passwd | None) -> Path:
    """`root`, or a folder under /var/tmp named after it when `user` cannot reach `root`.

    A server run as another account needs every existing parent folder searchable by it;
    pytest's and /root's folders are not (mode 700).
    """
    if user is None:
        return root
    for folder in [root, *root.parents]:
        if not folder.exists():
            continue
        status = folder.stat()
        if status.st_uid == user.pw_uid:
            allowed = status.st_mode & stat.S_IXUSR
        elif status.st_gid == user.pw_gid:
            allowed = status.st_mode & stat.S_IXGRP
        else:
            allowed = status.st_mode & stat.S_IXOTH
        if not allowed:
            digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
            return Path("/var/tmp") / f"kefu-{root.name}-{digest}"  # noqa: S108 (private name)
    return root


def port_open(host: str, port: int) -> bool:
    """True when a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


class LocalServer(Running):
    """One server process in a private folder: start, wait until ready, stop without leftovers.

    Subclasses give the `command`, the `url` and `is_ready`; `prepare` may create files first.
    As root, a server whose `user` is set runs as that account (`service_user`).
    """

    name = "server"
    stop_signal = signal.SIGTERM
    start_timeout = 60.0
    keep_data = True

    def __init__(
        self,
        root: Path,
        port: int,
        host: str = "127.0.0.1",
        user: pwd.struct_passwd | None = None,
    ) -> None:
        self.user = user
        self.requested_root = root
        self.root = reachable_root(root, user)
        self.port = port
        self.host = host
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """How clients reach the server."""
        raise NotImplementedError

    @property
    def log_path(self) -> Path:
        """The server's stdout and stderr."""
        return self.root / f"{self.name}.log"

    def command(self) -> list[str]:
        """The command line that runs the server in the foreground."""
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        """Variables added to the server's environment."""
        return {}

    def prepare(self) -> None:
        """Creates the private folder (owned by `user` when set)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.chown(self.root)

    def chown(self, path: Path) -> None:
        """Gives `path` to the server's user (when running as root for another account)."""
        if self.user is not None:
            os.chown(path, self.user.pw_uid, self.user.pw_gid)

    def is_ready(self) -> bool:
        """True when the server answers (default: its port accepts connections)."""
        return port_open(self.host, self.port)

    def start(self, timeout: float | None = None) -> None:
        """Starts the server and blocks until it is ready; raises `LocalServerError` if not."""
        self.spawn()
        self.wait_ready(timeout)

    def spawn(self) -> None:
        """Starts the server's process (`wait_ready` waits for it)."""
        self.prepare()
        home = {"HOME": str(self.root)} if self.user is not None else {}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.root,
                env={**os.environ, **home, **self.environment()},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=self.user.pw_uid if self.user else None,
                group=self.user.pw_gid if self.user else None,
                extra_groups=[] if self.user else None,
            )

    def wait_ready(self, timeout: float | None = None) -> None:
        """Blocks until the spawned server is ready; stops it and raises if it is not."""
        process = self.process
        if process is None:
            raise LocalServerError(f"{self.name} was not started")
        deadline = time.monotonic() + (timeout or self.start_timeout)
        while not self.is_ready():
            if process.poll() is not None:
                self.stop()
                raise LocalServerError(
                    f"{self.name} exited with code {process.returncode}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise LocalServerError(
                    f"{self.name} not ready on port {self.port}:\n{self.log_tail()}"
                )
            time.sleep(0.2)

    def stop(self, grace: float = 15.0) -> None:
        """Sends `stop_signal` to the server's process group; SIGKILL to what outlives `grace`."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, self.stop_signal)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        kill_group(process.pid, grace=2.0)
        if not self.keep_data and self.root != self.requested_root:
            shutil.rmtree(self.root, ignore_errors=True)  # a /var/tmp stand-in for a test folder

    def log_tail(self, characters: int = 3000) -> str:
        """The end of the server's log."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-characters:]


def group_alive(pgid: int) -> bool:
    """True while any process of the group `pgid` runs."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_group(pgid: int, grace: float) -> None:
    """Waits up to `grace` seconds for the group's last processes, then SIGKILLs them."""
    deadline = time.monotonic() + grace
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
