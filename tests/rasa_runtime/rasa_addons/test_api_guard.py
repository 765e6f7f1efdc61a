"""The API guard: in production, Rasa's HTTP API answers only allowed client addresses."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import rasa.server
from rasa.core.channels.channel import register
from rasa.core.channels.rest import RestInput
from sanic import Sanic

from kefu_shared.masking import PersonalDataFilter
from rasa_addons.api_guard import ApiGuardInput, is_public
from tests.rasa_runtime.connectors.server import free_port

TOKEN = "rasa-token-for-tests-0123456789"
API_CALLS = [
    ("GET", f"/status?token={TOKEN}"),
    ("GET", f"/version?token={TOKEN}"),
    ("GET", f"/conversations/web:abc/tracker?token={TOKEN}"),
    ("POST", f"/conversations/web:abc/tracker/events?token={TOKEN}"),
    ("PUT", f"/model?token={TOKEN}"),
    ("GET", "/domain"),
    ("GET", "/webhooks"),  # not under /webhooks/
    ("GET", "/socket.io.evil"),
]


@pytest.fixture(autouse=True)
def sanic_test_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several Sanic apps in one process (Sanic's touch-up breaks otherwise)."""
    monkeypatch.setattr(Sanic, "test_mode", True)


@asynccontextmanager
async def rasa_server(guard: ApiGuardInput) -> AsyncIterator[httpx.AsyncClient]:
    """Rasa's HTTP API (no model) with the REST channel and `guard`, on a loopback port."""
    app = rasa.server.create_app(auth_token=TOKEN)
    app.name = f"rasa_guard_{uuid.uuid4().hex}"
    register([RestInput(), guard], app, route="/webhooks/")
    port = free_port()
    server: Any = await app.create_server(
        host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
    )
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        await server.before_stop()
        await server.close()
        await server.after_stop()


async def call(client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> int:
    return (await client.request(method, path, **kwargs)).status_code


async def test_production_refuses_the_api_to_other_addresses() -> None:
    async with rasa_server(ApiGuardInput(allowed="10.9.8.7", env="production")) as client:
        for method, path in API_CALLS:
            response = await client.request(method, path, json={})
            assert response.status_code == 403, (method, path)
            assert response.json()["reason"] == "NotAllowed"
        # the health check, the channels' webhooks and socket.io stay public
        assert (await client.get("/")).status_code == 200
        assert await call(client, "GET", "/webhooks/rest/") == 200
        assert await call(client, "GET", "/webhooks/api_guard/") == 200
        webhook = await call(client, "POST", "/webhooks/rest/webhook", json={"sender": "x"})
        assert webhook != 403
        assert await call(client, "GET", "/socket.io/?EIO=4&transport=polling") != 403


async def test_production_serves_the_api_to_allowed_addresses() -> None:
    async with rasa_server(
        ApiGuardInput(allowed="10.9.8.7, 127.0.0.1", env="production")
    ) as client:
        assert await call(client, "GET", f"/version?token={TOKEN}") == 200
        assert (
            await call(client, "GET", f"/status?token={TOKEN}") == 409
        )  # no model: Rasa's own answer
        assert await call(client, "GET", "/status?token=wrong") == 401  # the token still counts


async def test_local_runs_are_not_restricted() -> None:
    async with rasa_server(ApiGuardInput(allowed="10.9.8.7", env="local")) as client:
        assert await call(client, "GET", f"/version?token={TOKEN}") == 200


async def test_forwarded_addresses_count_only_from_trusted_proxies() -> None:
    spoofed = {"X-Forwarded-For": "10.9.8.7"}
    guard = ApiGuardInput(allowed="10.9.8.7", env="production")
    async with rasa_server(guard) as client:
        assert await call(client, "GET", f"/version?token={TOKEN}", headers=spoofed) == 403
    proxied = ApiGuardInput(allowed="10.9.8.7", env="production", trusted_proxies="127.0.0.1")
    async with rasa_server(proxied) as client:
        assert await call(client, "GET", f"/version?token={TOKEN}", headers=spoofed) == 200
        # a client cannot prepend an allowed address: the proxy appends the real one
        chained = {"X-Forwarded-For": "10.9.8.7, 203.0.113.5"}
        assert await call(client, "GET", f"/version?token={TOKEN}", headers=chained) == 403
        assert await call(client, "GET", f"/version?token={TOKEN}") == 403


def test_credentials_configure_the_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEFU_TRUSTED_PROXIES", "10.0.0.1")
    guard = ApiGuardInput.from_credentials(
        {"allowed": "127.0.0.1, ::1,10.1.2.3", "env": "production"}
    )
    assert guard.allowed == {"127.0.0.1", "::1", "10.1.2.3"}
    assert guard.enforced and guard.trusted_proxies == {"10.0.0.1"}
    assert not ApiGuardInput.from_credentials({"allowed": "", "env": "local"}).enforced
    assert ApiGuardInput.from_credentials(None).allowed == {"127.0.0.1", "::1"}
    assert ApiGuardInput.name() == "api_guard"


@pytest.mark.parametrize(
    ("path", "public"),
    [
        ("/", True),
        ("/webhooks/rest/webhook", True),
        ("/webhooks/telegram/webhook", True),
        ("/socket.io/", True),
        ("/socket.io", True),
        ("/status", False),
        ("/webhooks", False),
        ("/webhooksx/rest", False),
        ("/model", False),
        ("/conversations/x/tracker", False),
    ],
)
def test_public_paths(path: str, public: bool) -> None:
    assert is_public(path) is public


async def test_the_listener_masks_logs_and_quiets_http_clients() -> None:
    root = logging.getLogger()
    handler = logging.StreamHandler()
    root.addHandler(handler)
    logging.getLogger("httpx").setLevel(logging.INFO)
    try:
        async with rasa_server(ApiGuardInput(env="local")):
            assert any(isinstance(f, PersonalDataFilter) for f in handler.filters)
            assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
        record = logging.LogRecord(
            "httpx",
            logging.INFO,
            __file__,
            1,
            "HTTP Request: %s %s",
            ("POST", f"http://x/bot123:{TOKEN}/send?token={TOKEN}"),
            None,
        )
        for known in handler.filters:
            assert isinstance(known, PersonalDataFilter) and known.filter(record)
        assert TOKEN not in record.getMessage()
    finally:
        root.removeHandler(handler)
