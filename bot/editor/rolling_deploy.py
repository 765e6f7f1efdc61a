"""Putting a model into the running Rasa processes without leaving customers unanswered.

Three cases, chosen by what runs:

- Several instances behind HAProxy (`VAR_DIR/scaleout/stack.json`, written by the scale-out
  stack): one instance at a time is drained on HAProxy's admin socket, loads the model
  (`PUT /model` on its own port), is checked and put back; then the next.
- One Rasa started through `rasa_addons.launch` (it records itself in
  `VAR_DIR/run/rasa-<port>.json`): a copy of that process (same command line, environment and
  folder, the new `--model`) starts on the same port with SO_REUSEPORT; once it has loaded,
  warmed up and is listening, the old process gets SIGTERM and drains.
- Anything else: `PUT /model` on the one Rasa (it answers nothing while it loads).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bot.core.settings import Settings
from kefu_shared.process_state import is_alive

LOAD_TIMEOUT_S = 600.0
"""How long Rasa may take to load a model."""
LOADING_NICE = 10
"""The successor's niceness while it loads (root only; set back to 0 once it listens)."""
LOADING_CPUS = 1
"""How many cores a loading model may use (the last ones); the others stay free for the Rasa
that answers customers meanwhile. All cores again once the new model serves."""
STOP_TIMEOUT_S = 30.0
"""How long a replaced process may take to finish its requests and exit."""
DRAIN_TIMEOUT_S = 60.0
"""How long a drained instance may keep connections before it loads the model anyway."""
STACK_FILE = Path("scaleout") / "stack.json"
REPLACES_VARIABLE = "KEFU_RASA_REPLACES"  # rasa_addons.reuse_port reads it
Progress = Callable[[str], None]


class SwapError(RuntimeError):
    """The new model is not in service; the previous one still answers."""


def _quiet(_: str) -> None:
    """The default progress reporter: says nothing."""


# --- one Rasa process: a successor on the same port ------------------------------------


def record_path(settings: Settings) -> Path:
    """Where the Rasa process on `settings.rasa_port` records itself (rasa_addons.reuse_port)."""
    return settings.var_dir / "run" / f"rasa-{settings.rasa_port}.json"


def recorded_pid(settings: Settings) -> int | None:
    """The pid of the live Rasa recorded for the settings' port, if any."""
    try:
        record = json.loads(record_path(settings).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    pid = record.get("pid") if isinstance(record, dict) else None
    return pid if isinstance(pid, int) and is_alive(pid) else None


def successor_command(command: list[str], model: Path) -> list[str]:
    """`command` (`python -m rasa_addons.launch run ...`) with Rasa's `--model` set to `model`."""
    result = list(command)
    start = result.index("run") + 1 if "run" in result else 0  # python's own -m comes before
    for index in range(start, len(result)):
        argument = result[index]
        if argument in ("--model", "-m") and index + 1 < len(result):
            result[index + 1] = str(model)
            return result
        if argument.startswith("--model="):
            result[index] = f"--model={model}"
            return result
    return [*result, "--model", str(model)]


def _process_launch(pid: int) -> tuple[list[str], dict[str, str], Path]:
    """The command line, environment and working folder process `pid` was started with."""
    proc = Path(f"/proc/{pid}")
    try:
        command = proc.joinpath("cmdline").read_bytes().split(b"\0")
        environ = proc.joinpath("environ").read_bytes().split(b"\0")
        cwd = Path(os.readlink(proc / "cwd"))
    except OSError as error:
        raise SwapError(f"cannot read how Rasa (pid {pid}) was started: {error}") from error
    env = dict(
        item.decode(errors="surrogateescape").split("=", 1) for item in environ if b"=" in item
    )
    return [part.decode(errors="surrogateescape") for part in command if part], env, cwd


def _load_failure(log: Path, offset: int) -> str:
    """Rasa's reason, from what the successor wrote to the log."""
    try:
        with log.open("rb") as stream:
            stream.seek(offset)
            lines = stream.read().decode(errors="replace").splitlines()
    except OSError:
        return "see the Rasa log"
    reasons = [line for line in lines if "Could not load model" in line or "Error" in line]
    return (reasons or lines or ["no output"])[-1].strip()[:500]


def replace_process(
    settings: Settings, model: Path, old_pid: int, progress: Progress = _quiet
) -> int:
    """Starts a Rasa process with `model` next to `old_pid` on its port, then stops the old one.

    Returns the new process's pid. Raises `SwapError` when the new process does not come up
    (the old one keeps serving, untouched).
    """
    command, env, cwd = _process_launch(old_pid)
    log = settings.var_dir / "logs" / "rasa.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    offset = log.stat().st_size if log.exists() else 0
    progress(f"starting Rasa with {model.name} next to pid {old_pid} (same port)...")
    started = time.monotonic()
    # While it loads, the successor yields the CPU to the process that answers customers;
    # only a privileged deployer can raise its priority again afterwards, so only it lowers it.
    loading_nice = LOADING_NICE if os.geteuid() == 0 else 0
    with log.open("ab") as output:
        process = subprocess.Popen(
            ["nice", "-n", str(loading_nice), *successor_command(command, model.resolve())],
            cwd=cwd,
            env={**env, REPLACES_VARIABLE: str(old_pid)},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _set_autogroup_nice(process.pid, loading_nice)
    every_cpu = _pin(process.pid, loading_cpus())
    deadline = started + LOAD_TIMEOUT_S
    while recorded_pid(settings) != process.pid:
        if process.poll() is not None:
            raise SwapError(
                f"Rasa could not load {model.name} (exit code {process.returncode}): "
                f"{_load_failure(log, offset)}. It keeps serving the previous model."
            )
        if time.monotonic() > deadline:
            _stop(process.pid)
            raise SwapError(f"Rasa did not load {model.name} within {LOAD_TIMEOUT_S:.0f}s")
        time.sleep(0.5)
    _renice(process.pid, 0)
    _set_autogroup_nice(process.pid, 0)
    _pin(process.pid, every_cpu)
    progress(f"pid {process.pid} is listening after {time.monotonic() - started:.0f}s")
    _stop(old_pid)
    progress(f"pid {old_pid} drained and stopped")
    return process.pid


def _renice(pid: int, niceness: int) -> None:
    """Sets the niceness of every thread of `pid` (Linux's nice is per thread)."""
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError, ValueError):
            os.setpriority(os.PRIO_PROCESS, int(task.name), niceness)


def _set_autogroup_nice(pid: int, niceness: int) -> None:
    """The CPU weight of the process's session (Linux autogroups weigh sessions, not threads)."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/autogroup").write_text(str(niceness))


def loading_cpus(available: set[int] | None = None) -> set[int]:
    """The cores a loading model may use: the last `LOADING_CPUS`, all when there are few."""
    cpus = sorted(os.sched_getaffinity(0) if available is None else available)
    return set(cpus[-LOADING_CPUS:]) if len(cpus) > LOADING_CPUS else set(cpus)


def _pin(pid: int, cpus: set[int]) -> set[int]:
    """Restricts every thread of `pid` to `cpus`; returns the cores it had before."""
    try:
        before = os.sched_getaffinity(pid)
    except OSError:
        return cpus
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError, ValueError):
            os.sched_setaffinity(int(task.name), cpus)
    return before


@contextlib.contextmanager
def _loading_priority(pid: int | None) -> Iterator[None]:
    """A drained instance loads on one core at a low priority, so the others keep up.

    The niceness needs root (raising it back is privileged); the core pinning does not.
    """
    if pid is None or not is_alive(pid):
        yield
        return
    every_cpu = _pin(pid, loading_cpus())
    nice = os.geteuid() == 0
    if nice:
        _renice(pid, LOADING_NICE)
        _set_autogroup_nice(pid, LOADING_NICE)
    try:
        yield
    finally:
        if nice:
            _renice(pid, 0)
            _set_autogroup_nice(pid, 0)
        _pin(pid, every_cpu)


def _stop(pid: int) -> None:
    """SIGTERM (Sanic drains), SIGKILL after `STOP_TIMEOUT_S`."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while is_alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.2)


# --- several instances behind HAProxy ---------------------------------------------------


@dataclass(frozen=True)
class Instance:
    """One Rasa instance of the scale-out stack."""

    name: str
    url: str
    pid: int | None = None


@dataclass(frozen=True)
class Stack:
    """What `VAR_DIR/scaleout/stack.json` says about the running scale-out stack."""

    admin_socket: Path
    backend: str
    instances: tuple[Instance, ...]
    sticky_backend: str = "rasa_socketio"
    """socket.io's sticky backend (its servers track `backend`'s, same names)."""

    @classmethod
    def read(cls, path: Path) -> Stack:
        """Parses stack.json (H1's ScaleOutStack writes it)."""
        data = json.loads(path.read_text("utf-8"))
        return cls(
            Path(data["haproxy_admin_socket"]),
            str(data.get("backend", "rasa")),
            tuple(Instance(str(i["name"]), str(i["url"]), i.get("pid")) for i in data["instances"]),
            str(data.get("socketio_backend", "rasa_socketio")),
        )


def running_stack(settings: Settings) -> Stack | None:
    """The scale-out stack, when its file exists and HAProxy's admin socket answers."""
    path = settings.var_dir / STACK_FILE
    if not path.is_file():
        return None
    try:
        stack = Stack.read(path)
        HAProxyAdmin(stack.admin_socket).command("show info")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return stack


class HAProxyAdmin:
    """HAProxy's runtime API on its admin socket (`stats socket ... level admin`)."""

    def __init__(self, path: Path, timeout: float = 5.0) -> None:
        self.path = path
        self.timeout = timeout

    def command(self, line: str) -> str:
        """Sends one command and returns HAProxy's whole answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(self.timeout)
            connection.connect(str(self.path))
            connection.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def set_state(self, backend: str, server: str, state: str) -> None:
        """`set server backend/server state ready|drain|maint`."""
        answer = self.command(f"set server {backend}/{server} state {state}").strip()
        if answer:  # HAProxy answers nothing when it obeys
            raise SwapError(f"HAProxy refused to set {backend}/{server} {state}: {answer}")

    def stats(self) -> list[dict[str, str]]:
        """`show stat`: one row per frontend, backend and server."""
        return list(csv.DictReader(self.command("show stat").lstrip("# ").splitlines()))

    def server_stat(self, backend: str, server: str) -> dict[str, str]:
        """The `show stat` row of one server (scur, status, ...)."""
        for row in self.stats():
            if row.get("pxname") == backend and row.get("svname") == server:
                return row
        raise SwapError(f"HAProxy has no server {backend}/{server}")

    def has_server(self, backend: str, server: str) -> bool:
        """True when `backend/server` exists."""
        return any(r.get("pxname") == backend and r.get("svname") == server for r in self.stats())


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def instance_model(instance: Instance, token: str) -> str | None:
    """The model file the instance serves (its `/status`)."""
    response = httpx.get(f"{instance.url}/status", params={"token": token}, timeout=10)
    response.raise_for_status()
    name = response.json().get("model_file")
    return str(name) if name else None


def put_model(url: str, token: str, model: Path, timeout: float = LOAD_TIMEOUT_S) -> None:
    """`PUT /model` on one Rasa; it keeps its old model when the new one does not load."""
    try:
        response = httpx.put(
            f"{url}/model",
            params={"token": token},
            json={"model_file": str(model.resolve())},
            timeout=timeout,
        )
    except httpx.HTTPError as error:
        raise SwapError(f"Rasa at {url} did not answer: {error}") from error
    if response.status_code != 204:
        try:
            message = response.json().get("message", response.text)
        except ValueError:
            message = response.text
        raise SwapError(
            f"Rasa could not load {model.name} ({response.status_code}): {message}. "
            "It keeps serving the previous model."
        )


def _answers_with(instance: Instance, token: str, model: Path) -> bool:
    """The instance serves `model` and parses a message."""
    if instance_model(instance, token) != model.name:
        return False
    response = httpx.post(
        f"{instance.url}/model/parse", params={"token": token}, json={"text": "你好"}, timeout=30
    )
    return response.status_code == 200 and "intent" in response.json()


def roll_instance(
    stack: Stack, instance: Instance, token: str, model: Path, progress: Progress = _quiet
) -> None:
    """Drains one instance, loads `model` into it, checks it and puts it back in service.

    REST and API requests: `drain` (no new ones; those running finish). socket.io: its sticky
    server goes to `maint` and its sessions are shut, so the clients reconnect to another
    instance (the Redis manager lets any instance reach them).
    """
    admin = HAProxyAdmin(stack.admin_socket)
    sticky = admin.has_server(stack.sticky_backend, instance.name)
    admin.set_state(stack.backend, instance.name, "drain")
    try:
        if sticky:
            admin.set_state(stack.sticky_backend, instance.name, "maint")
            admin.command(f"shutdown sessions server {stack.sticky_backend}/{instance.name}")
        idle = _wait(
            lambda: admin.server_stat(stack.backend, instance.name).get("scur") == "0",
            DRAIN_TIMEOUT_S,
        )
        progress(f"{instance.name}: drained" if idle else f"{instance.name}: still busy, loading")
        with _loading_priority(instance.pid):
            put_model(instance.url, token, model)
        if not _answers_with(instance, token, model):
            raise SwapError(f"{instance.name} does not answer with {model.name} after loading it")
    finally:
        admin.set_state(stack.backend, instance.name, "ready")
        if sticky:
            admin.set_state(stack.sticky_backend, instance.name, "ready")
    if not _wait(
        lambda: admin.server_stat(stack.backend, instance.name).get("status", "").startswith("UP"),
        30.0,
    ):
        raise SwapError(f"HAProxy does not see {instance.name} up again")
    progress(f"{instance.name}: serving {model.name}")


def rolling_deploy(
    stack: Stack, token: str, model: Path, models_dir: Path, progress: Progress = _quiet
) -> None:
    """Puts `model` into every instance, one at a time; on failure puts back the old models."""
    before = {instance.name: instance_model(instance, token) for instance in stack.instances}
    done: list[Instance] = []
    try:
        for instance in stack.instances:
            roll_instance(stack, instance, token, model, progress)
            done.append(instance)
    except (SwapError, httpx.HTTPError, OSError) as error:
        for instance in done:
            previous = before[instance.name]
            if previous and (models_dir / previous).is_file():
                roll_instance(stack, instance, token, models_dir / previous, progress)
        raise SwapError(f"{error} (instances already switched were put back)") from error


# --- the choice ------------------------------------------------------------------------


def put_in_service(settings: Settings, model: Path, progress: Progress = _quiet) -> str:
    """Puts `model` into whatever Rasa runs; returns how ("rolling", "successor", "in-place").

    Raises `SwapError` when the model is not in service (the previous one is).
    """
    stack = running_stack(settings)
    if stack is not None:
        rolling_deploy(stack, settings.rasa_token, model, settings.models_dir, progress)
        return "rolling"
    old_pid = recorded_pid(settings)
    if old_pid is not None:
        replace_process(settings, model, old_pid, progress)
        return "successor"
    put_model(settings.rasa_url, settings.rasa_token, model)
    return "in-place"
