"""The REST channel: bearer token outside local runs, validated bodies, whitelisted metadata."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from rasa.core.channels.channel import UserMessage
from sanic import Sanic

from connectors.messages import MAX_METADATA_BYTES, TRUNCATION_METADATA_KEY
from connectors.rest import KefuRestInput
from tests.rasa_runtime.connectors.server import ChannelServer

TOKEN = "rest-token-0123456789abcdefghij"


@pytest.fixture(autouse=True)
def sanic_test_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several Sanic apps in one process (Sanic's touch-up breaks otherwise)."""
    monkeypatch.setattr(Sanic, "test_mode", True)


async def post(
    server: ChannelServer, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{server.url}/webhooks/rest/webhook",
            data=data,
            headers={"Content-Type": "application/json", **(headers or {})},
        ) as answer,
    ):
        return answer.status, await answer.text()


@pytest.fixture
async def local() -> AsyncIterator[ChannelServer]:
    async with ChannelServer(KefuRestInput.from_credentials({"token": "", "env": "local"})) as s:
        yield s


@pytest.fixture
async def protected() -> AsyncIterator[ChannelServer]:
    channel = KefuRestInput.from_credentials({"token": TOKEN, "env": "production"})
    async with ChannelServer(channel) as s:
        yield s


async def test_local_without_a_token_stays_open(local: ChannelServer) -> None:
    status, text = await post(local, {"sender": "shop-server-1", "message": "你好"})
    assert status == 200 and json.loads(text) == [
        {"recipient_id": "shop-server-1", "text": "echo: 你好"}
    ]
    assert local.received[0].sender_id == "shop-server-1"


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", TOKEN],
)
async def test_a_token_is_required_when_configured(
    protected: ChannelServer, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    status, _ = await post(protected, {"sender": "s1", "message": "hi"}, headers)
    assert status == 401
    assert protected.received == []


async def test_the_right_token_is_accepted(protected: ChannelServer) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    status, _ = await post(protected, {"sender": "s1", "message": "hi"}, headers)
    assert status == 200 and protected.received[0].sender_id == "s1"


async def test_the_token_is_checked_before_the_body(protected: ChannelServer) -> None:
    status, _ = await post(protected, b"not json")
    assert status == 401


def test_production_without_a_token_refuses_everything() -> None:
    channel = KefuRestInput.from_credentials({"token": "", "env": "production"})
    assert channel.requires_token
    assert not KefuRestInput.from_credentials({}).requires_token  # local by default
    assert KefuRestInput.from_credentials({"token": TOKEN, "env": "local"}).requires_token


async def test_metadata_is_whitelisted(local: ChannelServer) -> None:
    metadata = {"channel": "web", "kefu": {"agent": "x"}, TRUNCATION_METADATA_KEY: 3, "n": [1]}
    status, _ = await post(local, {"sender": "s1", "message": "hi", "metadata": metadata})
    assert status == 200
    assert local.received[0].metadata == {"channel": "web"}


async def test_oversized_metadata_is_refused(local: ChannelServer) -> None:
    metadata = {"channel": "x" * MAX_METADATA_BYTES}
    status, text = await post(local, {"sender": "s1", "message": "hi", "metadata": metadata})
    assert status == 413, text
    status, _ = await post(local, {"sender": "s1", "message": "hi", "metadata": [1]})
    assert status == 400
    assert local.received == []


class SlowServer(ChannelServer):
    """Takes `delay` seconds per message (a busy Rasa); `finished` holds the handled ones."""

    delay = 0.6

    def __init__(self, channel: KefuRestInput) -> None:
        super().__init__(channel)
        self.finished: list[str] = []

    async def handle_message(self, message: UserMessage) -> None:
        await asyncio.sleep(self.delay)
        await super().handle_message(message)
        self.finished.append(message.text or "")


async def test_a_message_whose_client_gives_up_is_still_handled() -> None:
    channel = KefuRestInput.from_credentials({"token": "", "env": "local"})
    async with SlowServer(channel) as server:
        timeout = aiohttp.ClientTimeout(total=0.1)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            with pytest.raises(asyncio.TimeoutError):
                await http.post(
                    f"{server.url}/webhooks/rest/webhook",
                    json={"sender": "impatient-1", "message": "还在吗"},
                )
        await asyncio.sleep(SlowServer.delay + 0.5)
        assert server.finished == ["还在吗"]  # handled to the end: stored with its answer
