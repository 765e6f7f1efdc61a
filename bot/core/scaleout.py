"""The scale-out stack: N Rasa instances behind HAProxy, sharing PostgreSQL, Redis and RabbitMQ.

`ScaleOutStack(settings, model)` starts everything on this machine (docs/scale-out.md):
the engines in `VAR_DIR/scaleout/<engine>/`, the app database migrated, the action-server
workers, the Rasa instances (the first alone, so two never create the same tables), the
web service, the scheduler and QA, and HAProxy on the public Rasa and action ports. It
writes `VAR_DIR/scaleout/stack.json` for the deploy and benchmark tools and stops it all
on exit.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bot.core.local_servers import (
    HAProxyServer,
    LocalServer,
    PostgresServer,
    RabbitMQServer,
    RedisServer,
    ensure_installed,
    free_port,
    haproxy_config,
)
from bot.core.local_servers.haproxy import RASA_BACKEND, SOCKETIO_BACKEND, Upstream
from bot.core.processes import (
    Service,
    ServiceError,
    ServiceGroup,
    actions_service,
    app_services,
    rasa_service,
)
from bot.core.running import Running
from bot.core.settings import Settings

BrokerKind = Literal["amqp", "sql"]

STACK_BROKER: BrokerKind = "amqp"
"""The event broker of the stack: "amqp" (RabbitMQ stream) or "sql" (PostgreSQL table)."""

APP_DATABASE, TRACKER_DATABASE, EVENTS_DATABASE = "kefu", "kefu_tracker", "kefu_events"
EVENTS_QUEUE = "kefu_events"
STACK_FILE = "stack.json"


@dataclass
class Engines:
    """The shared servers of the stack."""

    postgres: PostgresServer
    redis: RedisServer
    rabbitmq: RabbitMQServer

    @property
    def all(self) -> list[LocalServer]:
        """Every engine, in start order."""
        return [self.postgres, self.redis, self.rabbitmq]


@dataclass(frozen=True)
class StackLayout:
    """Internal ports: one per Rasa instance and per action-server worker."""

    rasa: list[Upstream]
    actions: list[Upstream]


def scaleout_dir(settings: Settings) -> Path:
    """`VAR_DIR/scaleout`: the engines' folders and stack.json."""
    return settings.var_dir / "scaleout"


def make_engines(settings: Settings, *, durable: bool = True) -> Engines:
    """The engines (not started) on free loopback ports, in `VAR_DIR/scaleout/<engine>/`."""
    root, host = scaleout_dir(settings), settings.host
    return Engines(
        PostgresServer(root / "postgres", free_port(host), host, durable=durable),
        RedisServer(root / "redis", free_port(host), host),
        RabbitMQServer(root / "rabbitmq", free_port(host), host, keep_data=durable),
    )


def event_broker_url(engines: Engines, broker: BrokerKind = STACK_BROKER) -> str:
    """The stack's event broker: the RabbitMQ stream queue, or a PostgreSQL database."""
    if broker == "amqp":
        return f"{engines.rabbitmq.url}/{EVENTS_QUEUE}"
    return engines.postgres.database_url(EVENTS_DATABASE, "psycopg")


def scaleout_settings(
    settings: Settings, engines: Engines, broker: BrokerKind = STACK_BROKER
) -> Settings:
    """`settings` with every store on the shared engines (the app's view of the URLs)."""
    postgres, redis = engines.postgres, engines.redis
    return settings.model_copy(
        update={
            "database_url": postgres.database_url(APP_DATABASE, "psycopg"),
            "tracker_store_url": postgres.database_url(TRACKER_DATABASE, "psycopg"),
            "event_broker_url": event_broker_url(engines, broker),
            "lock_store_url": redis.database_url(0),
            "socketio_redis_url": redis.database_url(1),
            "channel_state_url": redis.database_url(2),
        }
    )


def rasa_runtime_url(url: str) -> str:
    """A database URL as the Rasa runtime reads it (SQLAlchemy 1.4 with psycopg2)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def stack_layout(settings: Settings) -> StackLayout:
    """Free internal ports for `rasa_instances` Rasa processes and the action workers."""
    host, instances = settings.host, settings.rasa_instances
    workers = settings.action_workers or instances
    return StackLayout(
        rasa=[Upstream(f"rasa{k}", host, free_port(host)) for k in range(1, instances + 1)],
        actions=[Upstream(f"action{k}", host, free_port(host)) for k in range(1, workers + 1)],
    )


def scaleout_services(settings: Settings, model: Path, layout: StackLayout) -> list[Service]:
    """Action workers, the Rasa instances (each its own port and spool) and the app services."""
    rasa_urls = {
        "KEFU_TRACKER_STORE_URL": rasa_runtime_url(settings.tracker_store_url),
        "KEFU_EVENT_BROKER_URL": rasa_runtime_url(settings.event_broker_url),
    }
    instances = []
    for upstream in layout.rasa:
        spool = scaleout_dir(settings) / upstream.name / "spool.db"
        spool.parent.mkdir(parents=True, exist_ok=True)
        environment = {**rasa_urls, "KEFU_RASA_SPOOL_PATH": str(spool)}
        instances.append(rasa_service(settings, model, upstream.name, upstream.port, environment))
    workers = [actions_service(settings, u.name, u.port) for u in layout.actions]
    return [*workers, *instances, *app_services(settings)]


class ScaleOutStack(Running):
    """Engines, services and HAProxy for `settings.rasa_instances` Rasa instances.

    `prepare(settings)` runs after the app database is migrated, before the services start
    (the demo seeds its data there). `durable=False` turns PostgreSQL's fsync off (tests).
    """

    def __init__(
        self,
        settings: Settings,
        model: Path,
        *,
        broker: BrokerKind = STACK_BROKER,
        prepare: Callable[[Settings], None] | None = None,
        durable: bool = True,
    ) -> None:
        self.base_settings = settings
        self.settings = settings
        self.model = model
        self.broker = broker
        self.prepare = prepare
        self.engines = make_engines(settings, durable=durable)
        self.layout = stack_layout(settings)
        self.haproxy: HAProxyServer | None = None
        self.group: ServiceGroup | None = None

    @property
    def stack_file(self) -> Path:
        """`VAR_DIR/scaleout/stack.json`."""
        return scaleout_dir(self.base_settings) / STACK_FILE

    def start(self, timeout: float = 400.0) -> None:
        """Starts everything and waits until HAProxy sees every Rasa instance up."""
        from bot.core.db import upgrade

        ensure_installed()
        try:
            self._start_engines()
            self.engines.postgres.create_databases(APP_DATABASE, TRACKER_DATABASE, EVENTS_DATABASE)
            self.settings = scaleout_settings(self.base_settings, self.engines, self.broker)
            upgrade(self.settings.database_url)
            if self.prepare is not None:
                self.prepare(self.settings)
            self.haproxy = HAProxyServer(
                scaleout_dir(self.settings) / "haproxy",
                self.settings.rasa_port,
                self._haproxy_config(),
                self.settings.host,
            )
            self.haproxy.start()
            services = scaleout_services(self.settings, self.model, self.layout)
            self.group = ServiceGroup(services, self.settings)
            first, *rest = [u.name for u in self.layout.rasa]
            others = [s.name for s in services if s.name != first and s.name not in rest]
            self.group.start_waves([[first, *others], rest], timeout)
            self.wait_balanced(60.0)
            self.write_stack_file()
        except BaseException:
            self.stop()
            raise

    def _start_engines(self) -> None:
        """Starts the three engines at once (RabbitMQ takes the longest), then waits for each."""
        for engine in self.engines.all:
            engine.spawn()
        for engine in self.engines.all:
            engine.wait_ready()

    def _haproxy_config(self) -> str:
        admin = scaleout_dir(self.settings) / "haproxy" / "admin.sock"
        return haproxy_config(
            host=self.settings.host,
            rasa_port=self.settings.rasa_port,
            rasa=self.layout.rasa,
            actions_port=self.settings.actions_port,
            actions=self.layout.actions,
            admin_socket=admin,
        )

    def wait_balanced(self, timeout: float) -> None:
        """Blocks until HAProxy reports every Rasa instance UP."""
        if self.haproxy is None:
            raise ServiceError("HAProxy is not running")
        deadline = time.monotonic() + timeout
        while True:
            states = self.haproxy.server_states(RASA_BACKEND)
            if states and all(state == "UP" for state in states.values()):
                return
            if time.monotonic() > deadline:
                raise ServiceError(f"HAProxy does not see every Rasa instance up: {states}")
            time.sleep(0.3)

    def check_running(self) -> None:
        """Raises `ServiceError` if a service or an engine has exited."""
        if self.group is not None:
            self.group.check_running()
        for engine in [*self.engines.all, *([self.haproxy] if self.haproxy else [])]:
            if engine.process is not None and engine.process.poll() is not None:
                raise ServiceError(f"{engine.name} exited; see {engine.log_path}")

    def stop(self) -> None:
        """Stops HAProxy, the services, then the engines; removes stack.json.

        HAProxy first: no new requests, and no idle connection keeps a Rasa instance waiting.
        """
        self.stack_file.unlink(missing_ok=True)
        if self.haproxy is not None:
            self.haproxy.stop()
        if self.group is not None:
            self.group.stop()
        for engine in reversed(self.engines.all):
            engine.stop()

    def describe(self) -> dict[str, Any]:
        """What stack.json holds: URLs, instances, workers and the stack's KEFU_* settings."""
        if self.haproxy is None or self.group is None:
            raise ServiceError("The stack is not running")
        processes = {s.name: s.process.pid for s in self.group.services if s.process}

        def entries(upstreams: list[Upstream]) -> list[dict[str, Any]]:
            return [
                {
                    "name": u.name,
                    "port": u.port,
                    "url": f"http://{u.host}:{u.port}",
                    "pid": processes.get(u.name),
                }
                for u in upstreams
            ]

        return {
            "balancer_url": self.settings.rasa_url,
            "haproxy_admin_socket": str(self.haproxy.admin_socket),
            "backend": RASA_BACKEND,
            "sticky_backend": SOCKETIO_BACKEND,
            "instances": entries(self.layout.rasa),
            "action_workers": entries(self.layout.actions),
            "engines": {e.name: e.url for e in self.engines.all},
            "model": str(self.model),
            "settings_env": {
                k: v for k, v in self.settings.as_environment().items() if k.startswith("KEFU_")
            },
        }

    def write_stack_file(self) -> None:
        """Writes stack.json (readable by the owner only: it holds tokens)."""
        self.stack_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.stack_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.describe(), indent=2))
        os.chmod(temporary, 0o600)
        temporary.replace(self.stack_file)
