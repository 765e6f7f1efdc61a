"""The Telegram blueprint inside a real Sanic server, registered the way Rasa registers channels."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest
from rasa.core.channels.channel import UserMessage, register
from sanic import Sanic

from connectors.channel_state import SqliteChannelState
from connectors.telegram.channel import SECRET_HEADER, TelegramInput
from fakes.telegram_api import FakeTelegramAPI
from fakes.telegram_user import telegram_update

TOKEN = "123456:kefu-server-test-token"
SECRET = "kefu-server-test-secret"
CHAT = 777


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """A Sanic app serving one channel; `received` holds what reached "Rasa"."""

    def __init__(self, channel: TelegramInput) -> None:
        self.channel = channel
        self.received: list[UserMessage] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/webhooks/telegram"

    async def handle_message(self, message: UserMessage) -> None:
        self.received.append(message)
        await message.output_channel.send_text_message(message.sender_id, f"echo: {message.text}")

    async def __aenter__(self) -> Server:
        app = Sanic(f"kefu_telegram_{uuid.uuid4().hex}")
        app.ctx.agent = SimpleNamespace(handle_message=self.handle_message)
        register([self.channel], app, route="/webhooks/")
        self.server = await app.create_server(
            host="127.0.0.1", port=self.port, return_asyncio_server=True, access_log=False
        )
        await self.server.startup()
        await self.server.before_start()
        await self.server.after_start()
        self.http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.http.close()
        await self.server.before_stop()
        await self.server.close()
        await self.server.after_stop()

    async def post(self, body: bytes, secret: str | None = SECRET) -> tuple[int, dict[str, object]]:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        async with self.http.post(f"{self.url}/webhook", data=body, headers=headers) as answer:
            return answer.status, await answer.json()

    async def health(self) -> dict[str, object]:
        async with self.http.get(f"{self.url}/") as answer:
            assert answer.status == 200
            return dict(await answer.json())


@pytest.fixture(autouse=True)
def sanic_test_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several Sanic apps in one process (Sanic's touch-up breaks otherwise)."""
    monkeypatch.setattr(Sanic, "test_mode", True)


@pytest.fixture
def api() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI(TOKEN) as api:
        yield api


@pytest.fixture
async def server(api: FakeTelegramAPI, tmp_path: Path) -> AsyncIterator[Server]:
    channel = TelegramInput(TOKEN, SECRET, api.url, SqliteChannelState(tmp_path / "c.db"))
    async with Server(channel) as server:
        yield server


async def test_a_disabled_channel_answers_health_and_404() -> None:
    channel = TelegramInput.from_credentials({"token": "", "secret_token": ""})
    async with Server(channel) as server:
        assert await server.health() == {"status": "disabled", "channel": "telegram"}
        status, body = await server.post(b"{}")
        assert status == 404 and "not configured" in str(body["error"])


async def test_the_webhook_over_http(server: Server, api: FakeTelegramAPI) -> None:
    assert await server.health() == {
        "status": "ok",
        "channel": "telegram",
        "bot": None,
        "undelivered": 0,
    }
    update = json.dumps(telegram_update(1, CHAT, text="你好")).encode()
    assert (await server.post(update, secret=None))[0] == 403
    assert (await server.post(update, secret="wrong"))[0] == 403
    assert (await server.post(b"{not json"))[0] == 400
    assert (await server.post(b"x" * 100_000))[0] == 413
    assert server.received == []
    assert await server.post(update) == (200, {"status": "ok"})
    assert await server.post(update) == (200, {"status": "duplicate"})
    assert [message.text for message in server.received] == ["你好"]
    assert api.texts_to(CHAT) == ["echo: 你好"]
    assert (await server.health())["bot"] == "kefu_test_bot"
    api.block(CHAT)
    assert await server.post(json.dumps(telegram_update(2, CHAT, text="再见")).encode()) == (
        200,
        {"status": "ok"},
    )
    assert (await server.health())["undelivered"] == 1


async def test_stopping_the_server_closes_the_bot(api: FakeTelegramAPI, tmp_path: Path) -> None:
    channel = TelegramInput(TOKEN, SECRET, api.url, SqliteChannelState(tmp_path / "c.db"))
    async with Server(channel) as server:
        await server.post(json.dumps(telegram_update(1, CHAT, text="hi")).encode())
        assert channel.connection is not None and channel.connection.username
    assert channel.connection.username is None
