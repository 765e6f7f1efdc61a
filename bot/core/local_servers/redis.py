"""Redis: the Rasa instances' lock store and socket.io message queue, one child process."""

from __future__ import annotations

import socket

from bot.core.local_servers.common import LocalServer, require_binary


class RedisServer(LocalServer):
    """`redis-server` in the foreground on a loopback port; memory only (locks, pub/sub)."""

    name = "redis"

    @property
    def url(self) -> str:
        """Database 0."""
        return self.database_url(0)

    def database_url(self, database: int) -> str:
        """The URL of the numbered database."""
        return f"redis://{self.host}:{self.port}/{database}"

    def command(self) -> list[str]:
        """No snapshots, no append-only file: everything Redis holds here is short-lived."""
        return [
            require_binary("redis-server"),
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--dir",
            str(self.root),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--loglevel",
            "warning",
        ]

    def is_ready(self) -> bool:
        """PING answers PONG."""
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False
