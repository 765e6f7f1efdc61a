"""A second Rasa process on the same port: the one-instance deploy without silence.

`kefu deploy` with one Rasa (no balancer) starts a copy of the running Rasa with the new model
on the same port. This module, installed by `rasa_addons.launch`, makes that work:

- Sanic listens with SO_REUSEPORT, so both processes accept on the port while they overlap.
  Only a declared successor (`KEFU_RASA_REPLACES=<pid of the running Rasa>`) may share a port:
  any other start on a port in use fails as before ("address already in use").
- The socket is bound only after the model has loaded and one message has gone through NLU and
  the policies (a warm-up, also done on `PUT /model`), so a new model answers at full speed
  from its first request.
- Once listening, the process records itself in `VAR_DIR/run/rasa-<port>.json` (pid, port,
  start time): the deploy waits for that record, then sends SIGTERM to the old process.
- A process that is stopped after a successor took over its record drains: every response
  says `Connection: close`, idle keep-alive connections are left to finish their next request
  instead of being cut, and connections still queued on its socket move to the successor
  (`net.ipv4.tcp_migrate_req=1`, set here when writable).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from functools import partial, wraps
from pathlib import Path
from typing import Any

from kefu_shared.process_state import is_alive

__all__ = [
    "REPLACES_VARIABLE",
    "install",
    "install_server",
    "is_alive",
    "port_is_free",
    "read_record",
    "record_path",
    "warm_up",
]

logger = logging.getLogger(__name__)

REPLACES_VARIABLE = "KEFU_RASA_REPLACES"
"""The pid of the Rasa process a successor replaces (set by the deploy)."""
MIGRATE_REQ = Path("/proc/sys/net/ipv4/tcp_migrate_req")
WARM_UP_TEXT = "你好"
_draining = False


def record_path(var_dir: Path, port: int) -> Path:
    """Where the Rasa process serving `port` records itself."""
    return var_dir / "run" / f"rasa-{port}.json"


def read_record(path: Path) -> dict[str, Any] | None:
    """The record at `path`, or None when missing or unreadable."""
    try:
        record = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("pid"), int) else None


def port_is_free(host: str, port: int) -> bool:
    """True when a plain listener (without SO_REUSEPORT) could bind `host:port`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def _var_dir() -> Path:
    return Path(os.environ.get("KEFU_VAR_DIR") or "var")


def _write_record(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial_file = path.with_name(f".{path.name}.{os.getpid()}")
    partial_file.write_text(json.dumps(record), "utf-8")
    os.replace(partial_file, path)


def _allow_migration() -> None:
    """Queued connections of a closing listener move to the others on the port (Linux >= 5.14)."""
    try:
        if MIGRATE_REQ.read_text().strip() != "1":
            MIGRATE_REQ.write_text("1")
    except OSError as error:
        logger.info("net.ipv4.tcp_migrate_req stays as it is (%s)", error)


def _check_port(host: str, port: int) -> None:
    """Refuses to share a port in use unless this process is the declared successor."""
    if port_is_free(host, port):
        return
    replaces = os.environ.get(REPLACES_VARIABLE, "")
    if replaces.isdigit() and is_alive(int(replaces)):
        return
    raise SystemExit(
        f"rasa_addons.reuse_port: {host}:{port} is already in use "
        f"(only a deploy's successor, {REPLACES_VARIABLE}=<pid>, may share it)"
    )


def warm_up(agent: Any) -> None:
    """One message through NLU and the policies, outside any tracker store.

    The first prediction of a freshly loaded model builds TensorFlow's graphs (seconds); done
    here, before the process listens or `PUT /model` answers, no customer waits for it.
    """
    from rasa.core.channels.channel import UserMessage
    from rasa.shared.core.constants import ACTION_LISTEN_NAME
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    processor = agent.processor
    if processor is None:
        return
    started = time.monotonic()
    try:
        tracker = DialogueStateTracker.from_events(
            "kefu-warm-up", [ActionExecuted(ACTION_LISTEN_NAME)], slots=agent.domain.slots
        )
        message = UserMessage(WARM_UP_TEXT, sender_id="kefu-warm-up")
        parsed = processor._parse_message_with_graph(message, tracker)
        tracker.update(
            UserUttered(WARM_UP_TEXT, parsed.get("intent"), parsed.get("entities"), parsed)
        )
        processor.predict_next_with_tracker(tracker)
    except Exception:  # a warm-up must never stop a model from loading
        logger.exception("Warm-up failed; serving anyway")
        return
    logger.info("Warm-up took %.1fs", time.monotonic() - started)


def _warmed(load_model: Callable[..., None]) -> Callable[..., None]:
    @wraps(load_model)
    def load_model_and_warm_up(agent: Any, *args: Any, **kwargs: Any) -> None:
        load_model(agent, *args, **kwargs)
        warm_up(agent)

    return load_model_and_warm_up


def _successor_needs_a_model(load: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(load)
    async def load_or_give_up(*args: Any, **kwargs: Any) -> Any:
        agent = await load(*args, **kwargs)
        if os.environ.get(REPLACES_VARIABLE) and not agent.is_ready():
            # Rasa serves without a model when it cannot load one; a successor must not.
            raise SystemExit("rasa_addons.reuse_port: the model did not load; not taking over")
        return agent

    return load_or_give_up


def _listeners(app: Any, host: str, port: int) -> None:
    """Records the process once listening; drains when a successor took the record."""
    path = record_path(_var_dir(), port)
    pid = os.getpid()

    async def record(*_: Any) -> None:
        _write_record(path, {"pid": pid, "host": host, "port": port, "started_at": time.time()})
        logger.info("Listening on %s:%s with SO_REUSEPORT as pid %s (%s)", host, port, pid, path)

    async def drain_if_replaced(*_: Any) -> None:
        global _draining
        current = read_record(path)
        if current is not None and current["pid"] != pid and is_alive(current["pid"]):
            _draining = True
            logger.info("Replaced by pid %s: draining connections", current["pid"])

    async def forget(*_: Any) -> None:
        current = read_record(path)
        if current is not None and current["pid"] == pid:
            with contextlib.suppress(OSError):
                path.unlink()

    async def close_when_draining(request: Any, response: Any) -> None:
        if _draining and request.stream is not None:
            request.stream.keep_alive = False

    app.register_listener(record, "after_server_start")
    app.register_listener(drain_if_replaced, "before_server_stop")
    app.register_listener(forget, "after_server_stop")
    app.register_middleware(close_when_draining, "response")


def _patched_serve(serve: Callable[..., Any], **kwargs: Any) -> Any:
    if kwargs.get("sock") is None and not kwargs.get("unix"):
        host, port = str(kwargs["host"]), int(kwargs["port"])
        _check_port(host, port)
        _allow_migration()
        kwargs["reuse_port"] = True
        _listeners(kwargs["app"], host, port)
    return serve(**kwargs)


def install() -> None:
    """Patches Rasa's start (warm-up, successor checks) and Sanic's server."""
    import rasa.core.run
    from rasa.core.agent import Agent

    if install_server():
        rasa.core.run.load_agent_on_start = _successor_needs_a_model(
            rasa.core.run.load_agent_on_start
        )
        Agent.load_model = _warmed(Agent.load_model)  # type: ignore[method-assign]


def install_server() -> bool:
    """Patches Sanic's server: SO_REUSEPORT, the record, draining. False if already done."""
    import sanic.server.runners
    from sanic.server.protocols.http_protocol import HttpProtocol

    if getattr(sanic.server.runners.serve, "_kefu_reuse_port", False):
        return False
    serve = partial(_patched_serve, sanic.server.runners.serve)
    serve._kefu_reuse_port = True  # type: ignore[attr-defined]
    sanic.server.runners.serve = serve
    close_if_idle = HttpProtocol.close_if_idle

    @wraps(close_if_idle)
    def close_if_idle_unless_draining(self: HttpProtocol) -> bool:
        # A drained connection ends after its next response (Connection: close) or at the
        # keep-alive timeout; cutting it now would fail a request already on its way.
        return False if _draining else close_if_idle(self)

    HttpProtocol.close_if_idle = close_if_idle_unless_draining  # type: ignore[method-assign]
    return True
