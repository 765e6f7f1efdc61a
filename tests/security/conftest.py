"""The live stack of the security suite: the e2e stack (local settings) and a production one.

The local stack is the e2e suite's own fixture (`tests/e2e/conftest.py`), imported, not
copied: Rasa, the action server and the web service on free loopback ports with fresh stores
and the WeChat and Telegram fakes. Attacks that only production refuses run against
`production_stack`: Rasa and the action server started with production settings (every
secret set, Rasa's HTTP API allowed from an address that is not this machine's).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from bot.bench.common import free_port
from bot.core.db import make_engine, upgrade
from bot.core.processes import ServiceError, ServiceGroup, kefu_services
from bot.core.settings import Settings, get_settings
from bot.core.training import ensure_model
from bot.service.orders import seed_demo_orders
from tests.e2e.conftest import (  # noqa: F401 (pytest fixtures, shared with the e2e suite)
    mailbox,
    stack,
    stack_group,
    telegram_api,
    wechat_api,
)

PRODUCTION_SECRETS = {
    "rasa_token": "prod-rasa-token-" + "r" * 24,
    "customer_session_secret": "prod-customer-sessions-" + "c" * 24,
    "action_token": "prod-action-token-" + "a" * 24,
    "rest_token": "prod-rest-token-" + "t" * 24,
}
"""Secrets production accepts (none published, none shorter than 24 characters)."""
NOT_THIS_MACHINE = "192.0.2.10"
"""The only address allowed on Rasa's HTTP API in production (TEST-NET-1: never loopback)."""


def production_settings(var: object, **overrides: object) -> Settings:
    """Production settings on free loopback ports, stores under `var`."""
    values: dict[str, object] = {
        "env": "production",
        "var_dir": var,
        "rasa_port": free_port(),
        "actions_port": free_port(),
        "web_port": free_port(),
        "rasa_api_allowed": NOT_THIS_MACHINE,
        **PRODUCTION_SECRETS,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session", autouse=True)
def _production_starting(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServiceGroup, Future[None]] | None]:
    """Starts the production servers in the background as the session begins.

    They load their model while the local stack starts; `production_group` waits for them.
    Nothing starts when no selected test needs them.
    """
    wanted = {"production_stack", "production_group"}
    if not any(wanted & set(getattr(item, "fixturenames", ())) for item in request.session.items):
        yield None
        return
    model, _ = ensure_model(get_settings())
    var = tmp_path_factory.mktemp("production-var")
    data = shutil.copytree(get_settings().data_dir, tmp_path_factory.mktemp("prod") / "data")
    settings = production_settings(var, data_dir=data)
    upgrade(settings.database_url)
    seed_demo_orders(make_engine(settings.database_url))
    services = [s for s in kefu_services(settings, model) if s.name in ("actions", "rasa")]
    for service in services:
        if service.name == "rasa":  # its API (the usual health check) refuses this machine
            service.health_url = f"{settings.rasa_url}/webhooks/rest/"
    group = ServiceGroup(services, settings)
    with ThreadPoolExecutor(1, thread_name_prefix="production-stack") as pool:
        starting = pool.submit(group.start)
        try:
            yield group, starting
        finally:
            starting.exception()  # wait for the start to end either way, then stop
            group.stop()


@pytest.fixture(scope="session")
def production_group(
    _production_starting: tuple[ServiceGroup, Future[None]] | None,
) -> ServiceGroup:
    """Rasa and the action server with production settings (no web service).

    Rasa's HTTP API (and so `/status`) refuses this machine, so Rasa counts as ready when its
    public REST channel answers.
    """
    assert _production_starting is not None
    group, starting = _production_starting
    try:
        starting.result()
    except ServiceError:
        for log in sorted((group.settings.var_dir / "logs").glob("*.log")):
            print(f"==> {log}\n{log.read_text()[-3000:]}")
        raise
    return group


@pytest.fixture(scope="session")
def production_stack(production_group: ServiceGroup) -> Settings:
    """Settings of the running production Rasa and action server."""
    return production_group.settings
