"""Database, cache, broker and balancer servers run as child processes for the scale-out stack.

One module per engine (PostgreSQL, Redis, RabbitMQ, HAProxy); each server is a context
manager that starts in a private folder on a given port, waits until it answers, exposes
its `url` and leaves nothing behind when it stops.
"""

from bot.core.local_servers.common import (
    LocalServer,
    LocalServerError,
    ensure_installed,
    free_port,
    missing_packages,
)
from bot.core.local_servers.haproxy import HAProxyServer, haproxy_config
from bot.core.local_servers.postgres import PostgresServer
from bot.core.local_servers.rabbitmq import RabbitMQServer
from bot.core.local_servers.redis import RedisServer

__all__ = [
    "HAProxyServer",
    "LocalServer",
    "LocalServerError",
    "PostgresServer",
    "RabbitMQServer",
    "RedisServer",
    "ensure_installed",
    "free_port",
    "haproxy_config",
    "missing_packages",
]
