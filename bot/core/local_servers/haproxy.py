"""HAProxy in front of the Rasa instances and the action-server workers; its config is code."""

from __future__ import annotations

import csv
import io
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

from bot.core.local_servers.common import LocalServer, LocalServerError, require_binary

RASA_BACKEND = "rasa"
"""Rasa's REST webhooks and HTTP API: each request to the next instance (round robin)."""

SOCKETIO_BACKEND = "rasa_socketio"
"""socket.io: sticky (cookie KEFU_RASA, else the client address); its servers track `rasa`'s."""

ACTIONS_BACKEND = "actions"
"""The action-server workers (fewest connections first)."""

STICKY_COOKIE = "KEFU_RASA"
INSTANCE_HEADER = "X-Kefu-Instance"
"""Response header naming the Rasa instance that answered (tests and operators use it)."""

MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes


@dataclass(frozen=True)
class Upstream:
    """One server behind HAProxy."""

    name: str
    host: str
    port: int


def haproxy_config(
    *,
    host: str,
    rasa_port: int,
    rasa: list[Upstream],
    actions_port: int,
    actions: list[Upstream],
    admin_socket: Path,
) -> str:
    """The whole configuration: Rasa on `rasa_port`, the actions on `actions_port`.

    A failed connection is retried on another server (`retry-on conn-failure` only: a POST
    that reached Rasa is never sent twice); health checks every second take a dead server
    out within about two seconds. The admin socket (level admin) lets a deploy drain a server.
    """
    rasa_servers = "\n".join(f"    server {u.name} {u.host}:{u.port} check" for u in rasa)
    sticky_servers = "\n".join(
        f"    server {u.name} {u.host}:{u.port} cookie {u.name} track {RASA_BACKEND}/{u.name}"
        for u in rasa
    )
    action_servers = "\n".join(f"    server {u.name} {u.host}:{u.port} check" for u in actions)
    return f"""\
# Written by bot/core/local_servers/haproxy.py; do not edit (it is rewritten on each start).
global
    maxconn 4096
    stats socket {admin_socket} mode 600 level admin
    stats timeout 30s

defaults
    mode http
    option http-keep-alive
    option redispatch 1
    retries 3
    retry-on conn-failure
    timeout connect 2s
    timeout client 5m
    timeout server 5m
    timeout http-request 30s
    timeout http-keep-alive 10s
    timeout queue 30s
    timeout tunnel 1h
    # A busy Rasa answers its health check late (a reply holds its event loop for a moment):
    # without `timeout check` the check times out after `inter` (1 s), and under load during a
    # rolling deploy the one instance left in service was marked DOWN (503 for every customer).
    timeout check 5s
    default-server inter 1s fastinter 500ms downinter 1s fall 3 rise 1

frontend rasa_public
    bind {host}:{rasa_port}
    use_backend {SOCKETIO_BACKEND} if {{ path_beg /socket.io/ }}
    default_backend {RASA_BACKEND}

backend {RASA_BACKEND}
    balance roundrobin
    option httpchk GET /
    http-check expect status 200
    http-response set-header {INSTANCE_HEADER} %[srv_name]
{rasa_servers}

backend {SOCKETIO_BACKEND}
    balance source
    hash-type consistent
    cookie {STICKY_COOKIE} insert indirect nocache httponly
    http-response set-header {INSTANCE_HEADER} %[srv_name]
{sticky_servers}

frontend actions_public
    bind {host}:{actions_port}
    default_backend {ACTIONS_BACKEND}

backend {ACTIONS_BACKEND}
    balance leastconn
    option httpchk GET /health
    http-check expect status 200
{action_servers}
"""


class HAProxyServer(LocalServer):
    """`haproxy -db` (foreground) with the configuration written to `root/haproxy.cfg`."""

    name = "haproxy"
    stop_signal = signal.SIGTERM

    def __init__(self, root: Path, port: int, config: str, host: str = "127.0.0.1") -> None:
        super().__init__(root, port, host)
        self.config = config

    @property
    def url(self) -> str:
        """The balanced Rasa URL."""
        return f"http://{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        """Where the configuration is written."""
        return self.root / "haproxy.cfg"

    @property
    def admin_socket(self) -> Path:
        """The admin socket (`stats socket ... level admin`)."""
        return self.root / "admin.sock"

    def prepare(self) -> None:
        """Writes and checks the configuration (`haproxy -c`)."""
        super().prepare()
        if len(str(self.admin_socket)) > MAX_SOCKET_PATH:
            raise LocalServerError(f"Path too long for a unix socket: {self.admin_socket}")
        self.admin_socket.unlink(missing_ok=True)
        self.config_path.write_text(self.config)

    def command(self) -> list[str]:
        """HAProxy in the foreground, no daemon."""
        return [require_binary("haproxy"), "-db", "-f", str(self.config_path)]

    def is_ready(self) -> bool:
        """The admin socket answers."""
        try:
            return "Name:" in self.admin("show info")
        except OSError:
            return False

    def stop(self, grace: float = 5.0) -> None:
        """Stops HAProxy and removes its socket."""
        super().stop(grace)
        self.admin_socket.unlink(missing_ok=True)

    def admin(self, command: str) -> str:
        """Sends one command to the admin socket; returns the answer."""
        return admin_command(self.admin_socket, command)

    def server_states(self, backend: str = RASA_BACKEND) -> dict[str, str]:
        """Each server of `backend` -> its status (UP, DOWN, MAINT, DRAIN ...)."""
        return server_states(self.admin_socket, backend)


def admin_command(path: Path, command: str) -> str:
    """Sends one command to an HAProxy admin socket; returns the answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def server_stats(path: Path, backend: str) -> list[dict[str, str]]:
    """`show stat` rows of the servers of `backend` (pxname, svname, status, scur, stot ...)."""
    text = admin_command(path, "show stat").lstrip("# ")
    rows = csv.DictReader(io.StringIO(text))
    return [
        row
        for row in rows
        if row["pxname"] == backend and row["svname"] not in ("FRONTEND", "BACKEND")
    ]


def server_states(path: Path, backend: str) -> dict[str, str]:
    """Each server of `backend` -> its status."""
    return {row["svname"]: row["status"] for row in server_stats(path, backend)}
