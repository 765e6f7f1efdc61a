"""Starts, watches and stops Kefu's servers: Rasa, actions, web and the follow-up scheduler."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bot.core.running import Running
from bot.core.settings import PROJECT_ROOT, Settings
from bot.core.training import rasa_process_environment
from kefu_shared.process_state import is_alive


class ServiceError(RuntimeError):
    """A server did not become healthy, or stopped on its own."""


class AdoptedProcess:
    """A server process this group did not start (a deploy's successor), watched by pid."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """None while the process runs (its exit code is not ours to read: 0 once gone)."""
        if self.returncode is None and not is_alive(self.pid):
            self.returncode = 0
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Waits until the process has gone; `subprocess.TimeoutExpired` after `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0.0)
            time.sleep(0.1)
        return code


@dataclass
class Service:
    """One server process: how to start it and how to tell it is ready.

    A service without a `health_url` (a worker that serves no HTTP) is ready while it runs.
    """

    name: str
    command: list[str]
    health_url: str | None
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | AdoptedProcess | None = None
    log_path: Path | None = None
    record_path: Path | None = None
    """Rasa's own record of the process serving its port (`rasa_addons.reuse_port`): a
    one-instance deploy starts a successor there, which this service then follows."""

    def is_healthy(self) -> bool:
        """True when the health URL answers 200 (no URL: while the process runs)."""
        if self.health_url is None:
            return self.process is not None and self.process.poll() is None
        try:
            with urllib.request.urlopen(self.health_url, timeout=2) as response:  # noqa: S310 (http only)
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def follow_successor(self) -> bool:
        """Adopts the live process that took over this service's port, if there is one."""
        if self.record_path is None or self.process is None:
            return False
        try:
            pid = json.loads(self.record_path.read_text("utf-8"))["pid"]
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if not isinstance(pid, int) or pid == self.process.pid or not is_alive(pid):
            return False
        self.process = AdoptedProcess(pid)
        return True


def kefu_services(settings: Settings, model: Path) -> list[Service]:
    """The action server, Rasa (API on, token required), the web service, the scheduler, QA.

    Secrets reach the servers by environment, never by command line (which `ps` shows) or
    by a URL that a log could record: Rasa runs through `rasa_addons.launch`, which reads
    KEFU_RASA_TOKEN, and its health check is `/`, which needs no token. Creates the folders
    of SQLite stores, which Rasa does not create itself.
    """
    settings.create_sqlite_folders()
    return [
        actions_service(settings, "actions", settings.actions_port),
        rasa_service(settings, model, "rasa", settings.rasa_port),
        *app_services(settings),
    ]


def actions_service(settings: Settings, name: str, port: int) -> Service:
    """One rasa-sdk action server on `port`."""
    return Service(
        name,
        [str(settings.app_python), "-m", "actions", "--port", str(port)],
        f"http://{settings.host}:{port}/health",
        {
            "SANIC_HOST": settings.host,
            "KEFU_ACTION_TOKEN": settings.action_token,
            "PYTHONPATH": str(PROJECT_ROOT),
        },
    )


def rasa_service(
    settings: Settings,
    model: Path,
    name: str,
    port: int,
    environment: dict[str, str] | None = None,
) -> Service:
    """One Rasa server on `port` (`environment` overrides `rasa_service_environment`)."""
    return Service(
        name,
        [
            str(settings.rasa_bin.parent / "python"),
            "-m",
            "rasa_addons.launch",
            "run",
            "--model",
            str(model),
            "--enable-api",
            "--interface",
            settings.host,
            "--port",
            str(port),
            "--cors",
            f"http://{settings.host}:{settings.web_port}",
            "--credentials",
            "credentials.yml",
            "--endpoints",
            "endpoints.yml",
        ],
        f"http://{settings.host}:{port}/",
        {**rasa_service_environment(settings), **(environment or {})},
        record_path=settings.var_dir / "run" / f"rasa-{port}.json",
    )


def app_services(settings: Settings) -> list[Service]:
    """The web service (chat page, desk), the follow-up scheduler and the QA service."""
    python = str(settings.app_python)
    pythonpath = {"PYTHONPATH": str(PROJECT_ROOT)}
    return [
        Service(
            "web",
            [
                python,
                "-m",
                "uvicorn",
                "--factory",
                "bot.web:create_app",
                "--host",
                settings.host,
                "--port",
                str(settings.web_port),
            ],
            f"http://{settings.host}:{settings.web_port}/healthz",
            pythonpath,
        ),
        Service(
            "followups",
            [python, "-m", "bot.cli.main", "followups", "serve"],
            None,
            pythonpath,
        ),
        Service(
            "supervision",
            [python, "-m", "bot.cli.main", "qa", "serve"],
            None,
            pythonpath,
        ),
    ]


def rasa_service_environment(settings: Settings) -> dict[str, str]:
    """The Rasa process's environment.

    The variables its YAML files read, its API token (read by `rasa_addons.launch`) and
    Sanic's body limit on every route.
    """
    return {
        **settings.rasa_environment(),
        **rasa_process_environment(),
        "KEFU_RASA_TOKEN": settings.rasa_token,
        "SANIC_REQUEST_MAX_SIZE": str(settings.max_json_bytes),
    }


class ServiceGroup(Running):
    """Runs services as child processes; stops every one of them on exit."""

    def __init__(self, services: list[Service], settings: Settings) -> None:
        self.services = services
        self.settings = settings

    def start(self, timeout: float = 240.0) -> None:
        """Starts every service and waits until all are healthy."""
        for service in self.services:
            self._spawn(service)
        self.wait_healthy(timeout)

    def restart(self, name: str, timeout: float = 240.0) -> None:
        """Stops the service called `name`, starts it again and waits until all are healthy."""
        self.stop_service(name)
        self.start_service(name, timeout)

    def stop_service(self, name: str) -> None:
        """Stops the service called `name` (SIGTERM, then SIGKILL after 10 s)."""
        _terminate(self._processes([next(s for s in self.services if s.name == name)]), 10.0)

    def start_service(self, name: str, timeout: float = 240.0) -> None:
        """Starts the service called `name` and waits until every service is healthy."""
        self._spawn(next(s for s in self.services if s.name == name))
        self.wait_healthy(timeout)

    def _spawn(self, service: Service) -> None:
        logs = self.settings.var_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        service.log_path = logs / f"{service.name}.log"
        with service.log_path.open("ab") as log:
            service.process = subprocess.Popen(
                service.command,
                cwd=PROJECT_ROOT,
                env={**os.environ, **self.settings.as_environment(), **service.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_waves(self, waves: list[list[str]], timeout: float = 240.0) -> None:
        """Starts the services wave by wave: each wave's services healthy before the next.

        Rasa instances sharing a new database start one first, so two never race to
        create the same tables.
        """
        deadline = time.monotonic() + timeout
        for wave in waves:
            started = [next(s for s in self.services if s.name == name) for name in wave]
            for service in started:
                self._spawn(service)
            self.wait_healthy(max(1.0, deadline - time.monotonic()), started)

    def wait_healthy(self, timeout: float, services: list[Service] | None = None) -> None:
        """Blocks until every service (or those given) is healthy; raises on exit or timeout."""
        deadline = time.monotonic() + timeout
        pending = list(self.services if services is None else services)
        while pending:
            self.check_running()
            pending = [service for service in pending if not service.is_healthy()]
            if pending and time.monotonic() > deadline:
                names = ", ".join(service.name for service in pending)
                self.stop()
                raise ServiceError(f"Not healthy after {timeout:.0f}s: {names} (see var/logs)")
            if pending:
                time.sleep(0.5)

    def check_running(self) -> None:
        """Raises `ServiceError` (after stopping the rest) if a service has exited."""
        for service in self.services:
            if service.process is not None and service.process.poll() is not None:
                if service.follow_successor():  # a deploy replaced it
                    continue
                code = service.process.returncode
                self.stop()
                raise ServiceError(
                    f"{service.name} exited with code {code}; see {service.log_path}"
                )

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to each process group, SIGKILL after `grace` seconds."""
        _terminate(self._processes(self.services), grace)

    @staticmethod
    def _processes(services: list[Service]) -> list[subprocess.Popen[bytes] | AdoptedProcess]:
        """The services' processes, and any successor a deploy started (even mid-deploy)."""
        processes: list[subprocess.Popen[bytes] | AdoptedProcess] = []
        for service in services:
            if service.process is not None:
                processes.append(service.process)
            if service.follow_successor() and service.process is not None:
                processes.append(service.process)
        return processes


def _terminate(processes: list[subprocess.Popen[bytes] | AdoptedProcess], grace: float) -> None:
    """SIGTERM to each process group, SIGKILL to those still running after `grace` seconds."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in running:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
