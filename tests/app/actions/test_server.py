import asyncio
import json
import threading
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rasa_sdk.endpoint import create_app as rasa_sdk_app
from sanic import Sanic

from actions.handoff import handoff_store
from actions.knowledge import kb_log
from actions.orders import order_store
from actions.server import MAX_BODY_BYTES, SelectiveDomainExecutor, health_guard, protect
from actions.service_plan import app_engine, ticket_store
from bot.core.db import engine as engine_module
from bot.core.settings import get_settings


def test_calls_without_a_domain_use_the_last_one_or_an_empty_one() -> None:
    executor = SelectiveDomainExecutor()
    assert executor.update_and_return_domain({}, "action_order_status") == {}
    domain = {"forms": {"order_status_form": {"required_slots": ["order_number"]}}}
    assert (
        executor.update_and_return_domain({"domain": domain}, "validate_order_status_form")
        == domain
    )
    assert executor.update_and_return_domain({}, "action_kb_feedback") == domain


def test_every_store_of_the_actions_shares_one_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []
    create_engine = engine_module.create_engine

    def recording(url: str, **options: Any) -> Any:
        made.append(url)
        return create_engine(url, **options)

    monkeypatch.setenv("KEFU_VAR_DIR", str(tmp_path))
    monkeypatch.setattr(engine_module, "create_engine", recording)
    stores = (app_engine, ticket_store, handoff_store, kb_log, order_store)
    for cached in (get_settings, *stores):
        cached.cache_clear()
    try:
        engine = app_engine()
        ticket_store(), handoff_store(), kb_log(), order_store()
        assert made == [get_settings().database_url]
        assert str(engine.url) == f"sqlite:///{tmp_path / 'data' / 'kefu.db'}"
    finally:
        for cached in (get_settings, *stores):
            cached.cache_clear()


# --- who may call the action server, and with what --------------------------------------------

TOKEN = "action-token-for-tests-0123456789"
CALL = {
    "next_action": "action_no_such_thing",
    "sender_id": "web:1",
    "version": "3.21.1",
    "tracker": {},
}


@pytest.fixture
def action_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[httpx.AsyncClient]:
    """rasa-sdk's app behind `protect`, served in-process over ASGI (lifespan run by hand)."""
    monkeypatch.setattr(Sanic, "test_mode", True)  # one app name, made once per test
    app = rasa_sdk_app(SelectiveDomainExecutor(), cors_origins=None)
    protect(app, TOKEN)
    yield httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def serving(client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """Runs the app's ASGI lifespan around the client (Sanic finalises its routes at startup)."""
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    app = transport.app
    messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await messages.put({"type": "lifespan.startup"})

    async def send(message: dict[str, Any]) -> None:
        await sent.put(message)

    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, messages.get, send)
    )  # type: ignore[arg-type]
    assert (await sent.get())["type"] == "lifespan.startup.complete"
    try:
        async with client:
            yield client
    finally:
        await messages.put({"type": "lifespan.shutdown"})
        await task


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_health_needs_no_token(action_server: httpx.AsyncClient) -> None:
    async for client in serving(action_server):
        assert (await client.get("/health")).status_code == 200


async def test_health_answers_503_until_the_knowledge_base_is_warm(
    action_server: httpx.AsyncClient,
) -> None:
    transport = action_server._transport
    assert isinstance(transport, httpx.ASGITransport)
    warm = threading.Event()
    transport.app.register_middleware(health_guard(warm), "request")  # type: ignore[attr-defined]
    async for client in serving(action_server):
        warming = await client.get("/health")
        assert warming.status_code == 503 and warming.json() == {"status": "warming up"}
        warm.set()
        assert (await client.get("/health")).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("wrong"), bearer(TOKEN + "x"), {"Authorization": TOKEN}, bearer("")],
)
async def test_webhook_without_the_token_is_refused(
    action_server: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    async for client in serving(action_server):
        response = await client.post("/webhook", json=CALL, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert (await client.get("/actions", headers=headers)).status_code == 401


async def test_webhook_with_the_token_runs_the_call(action_server: httpx.AsyncClient) -> None:
    async for client in serving(action_server):
        response = await client.post("/webhook", json=CALL, headers=bearer())
        assert response.status_code == 404  # rasa-sdk's answer: no such action
        assert response.json()["action_name"] == "action_no_such_thing"
        assert (await client.get("/actions", headers=bearer())).status_code == 200


@pytest.mark.parametrize("encoding", ["deflate", "gzip", "br", "deflate, identity"])
async def test_compressed_bodies_are_refused_unread(
    action_server: httpx.AsyncClient, encoding: str
) -> None:
    bomb = zlib.compress(b'{"next_action": "' + b" " * 5_000_000 + b'"}', 9)
    async for client in serving(action_server):
        response = await client.post(
            "/webhook",
            content=bomb,
            headers={**bearer(), "Content-Type": "application/json", "Content-Encoding": encoding},
        )
        assert response.status_code == 415
        assert "Content-Encoding" in response.json()["error"]


async def test_identity_encoding_is_plain_json(action_server: httpx.AsyncClient) -> None:
    async for client in serving(action_server):
        response = await client.post(
            "/webhook",
            content=json.dumps(CALL).encode(),
            headers={
                **bearer(),
                "Content-Type": "application/json",
                "Content-Encoding": "identity",
            },
        )
        assert response.status_code == 404


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""],
)
async def test_bodies_that_are_not_json_are_refused(
    action_server: httpx.AsyncClient, content_type: str
) -> None:
    async for client in serving(action_server):
        headers = {**bearer(), "Content-Type": content_type}
        response = await client.post("/webhook", content=json.dumps(CALL), headers=headers)
        assert response.status_code == 415


async def test_json_with_a_charset_is_accepted(action_server: httpx.AsyncClient) -> None:
    async for client in serving(action_server):
        headers = {**bearer(), "Content-Type": "application/json; charset=utf-8"}
        response = await client.post("/webhook", content=json.dumps(CALL), headers=headers)
        assert response.status_code == 404


async def test_bodies_above_1_mb_are_refused(action_server: httpx.AsyncClient) -> None:
    big = {**CALL, "pad": "x" * (MAX_BODY_BYTES + 1)}
    async for client in serving(action_server):
        response = await client.post("/webhook", json=big, headers=bearer())
        assert response.status_code == 413
        fits = {**CALL, "pad": "x" * (MAX_BODY_BYTES - 1000)}
        assert (await client.post("/webhook", json=fits, headers=bearer())).status_code == 404


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b"[1, 2]", b'"text"'])
async def test_bad_json_is_a_400_not_a_500(action_server: httpx.AsyncClient, body: bytes) -> None:
    async for client in serving(action_server):
        headers = {**bearer(), "Content-Type": "application/json"}
        response = await client.post("/webhook", content=body, headers=headers)
        assert response.status_code == 400


def test_the_sanic_body_limit_is_1_mb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Sanic, "test_mode", True)
    app = rasa_sdk_app(SelectiveDomainExecutor(), cors_origins=None)
    protect(app, TOKEN)
    assert app.config.REQUEST_MAX_SIZE == MAX_BODY_BYTES == 1024 * 1024
