"""RabbitMQ: the event broker (AMQP stream queues), one node with its own epmd."""

from __future__ import annotations

import socket
from pathlib import Path

from bot.core.local_servers.common import (
    LocalServer,
    free_port,
    port_open,
    require_binary,
    service_user,
)

SERVER_SCRIPT = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
"""Debian's server script (its /usr/sbin wrapper drops the environment through `su`)."""

AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


class _Epmd(LocalServer):
    """A private Erlang port mapper, so the node's name and data stay the same on every run."""

    name = "epmd"

    def command(self) -> list[str]:
        """The port mapper in the foreground on its own port."""
        return [require_binary("epmd"), "-port", str(self.port), "-address", self.host]


class RabbitMQServer(LocalServer):
    """A RabbitMQ node on a loopback AMQP port; data (streams) kept in `root/mnesia`.

    Runs Debian's server script as the `rabbitmq` account when root, with the node's name,
    ports, data and logs set by environment, no plugins, and a private epmd.
    `guest`/`guest` may log in from loopback (RabbitMQ's default).
    """

    name = "rabbitmq"
    start_timeout = 120.0
    node_name = "kefu@localhost"

    def __init__(
        self, root: Path, port: int, host: str = "127.0.0.1", *, keep_data: bool = True
    ) -> None:
        super().__init__(root, port, host, service_user("rabbitmq", "nobody"))
        self.keep_data = keep_data
        self.epmd = _Epmd(self.root / "epmd", free_port(host), host)
        self.dist_port = free_port(host)

    @property
    def url(self) -> str:
        """The AMQP server (the broker URL adds the queue as its path)."""
        return f"amqp://guest:guest@{self.host}:{self.port}"

    def prepare(self) -> None:
        """Folders, an empty configuration and no plugins."""
        super().prepare()
        for folder in (self.root / "mnesia", self.root / "log"):
            folder.mkdir(exist_ok=True)
            self.chown(folder)
        (self.root / "rabbitmq.conf").write_text("loopback_users.guest = true\n")
        (self.root / "enabled_plugins").write_text("[].\n")
        (self.root / "rabbitmq-env.conf").write_text("")

    def environment(self) -> dict[str, str]:
        """Node name, ports and folders: nothing from /etc/rabbitmq or /var/lib/rabbitmq."""
        return {
            "HOME": str(self.root),
            "RABBITMQ_NODENAME": self.node_name,
            "RABBITMQ_NODE_IP_ADDRESS": self.host,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd.port),
            "ERL_EPMD_ADDRESS": self.host,
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_LOGS": "-",
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.root / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(self.root / "rabbitmq-env.conf"),
            "RABBITMQ_PID_FILE": str(self.root / "rabbitmq.pid"),
        }

    def command(self) -> list[str]:
        """The server script, in the foreground."""
        script = (
            SERVER_SCRIPT if SERVER_SCRIPT.exists() else Path(require_binary("rabbitmq-server"))
        )
        return [str(script)]

    def spawn(self) -> None:
        """Starts epmd (and waits for it), then the node."""
        self.epmd.start()
        try:
            super().spawn()
        except BaseException:
            self.epmd.stop()
            raise

    def stop(self, grace: float = 20.0) -> None:
        """Stops the node (SIGTERM: a clean shutdown), then epmd."""
        try:
            super().stop(grace)
        finally:
            self.epmd.stop()

    def is_ready(self) -> bool:
        """The AMQP port answers the protocol header with Connection.Start (a method frame)."""
        if not port_open(self.host, self.port):
            return False
        try:
            with socket.create_connection((self.host, self.port), timeout=2) as connection:
                connection.sendall(AMQP_HEADER)
                return connection.recv(1) == b"\x01"
        except OSError:
            return False
