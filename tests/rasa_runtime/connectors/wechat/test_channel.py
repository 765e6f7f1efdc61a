"""The Sanic blueprint on a real server, registered the way `rasa run` registers channels."""

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from rasa.core.channels.channel import UserMessage, register
from sanic import Sanic

from connectors.channel_state import SqliteChannelState
from connectors.wechat.channel import WeChatInput, WeChatSettings
from connectors.wechat.text import UNSUPPORTED_MESSAGE
from fakes.wechat_api import FakeWeChatAPI
from fakes.wechat_user import WeChatUser
from tests.hostile_bodies import HOSTILE_WECHAT_BODIES

TOKEN = "kefu-blueprint-token"
APP_ID = "wx49f0ab532d5d035a"
SECRET = "kefu-blueprint-secret"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
OPENID = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Agent:
    """Rasa's agent as `register` uses it: answers after `delay` seconds."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.texts: list[str] = []

    async def handle_message(self, message: UserMessage) -> None:
        self.texts.append(message.text or "")
        await asyncio.sleep(self.delay)
        await message.output_channel.send_text_message(message.sender_id, f"答：{message.text}")


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Any]]:
    """Starts a Sanic app with the channel; yields (base URL, agent)."""
    servers: list[Any] = []

    async def start(channel: WeChatInput) -> tuple[str, Agent]:
        Sanic.test_mode = True
        app = Sanic(f"wechat_test_{uuid.uuid4().hex[:8]}")
        agent = Agent()
        app.ctx.agent = SimpleNamespace(handle_message=agent.handle_message)
        register([channel], app, route="/webhooks/")
        port = free_port()
        server = await app.create_server(
            host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
        )
        await server.startup()
        servers.append(server)
        return f"http://127.0.0.1:{port}", agent

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.fixture
def api() -> Any:
    with FakeWeChatAPI(APP_ID, SECRET) as fake:
        yield fake


def channel(tmp_path: Path, api: FakeWeChatAPI, **changes: Any) -> WeChatInput:
    settings = WeChatSettings(
        **{
            "token": TOKEN,
            "app_id": APP_ID,
            "app_secret": SECRET,
            "encoding_aes_key": AES_KEY,
            "api_base_url": api.url,
            "passive_reply_seconds": 0.5,
            **changes,
        }
    )
    return WeChatInput(settings, state=SqliteChannelState(tmp_path / "channels.db"))


async def test_safe_mode_end_to_end(
    serve: Callable[..., Any], tmp_path: Path, api: FakeWeChatAPI
) -> None:
    base, agent = await serve(channel(tmp_path, api))
    user = WeChatUser(TOKEN, APP_ID, AES_KEY, OPENID)
    url = f"{base}/webhooks/wechat/webhook"
    async with aiohttp.ClientSession() as http:
        health = await (await http.get(f"{base}/webhooks/wechat/")).json()
        assert health == {"status": "ok", "channel": "wechat", "mode": "aes", "undelivered": 0}

        query, _ = user.signed_query("")
        async with http.get(url, params={**query, "echostr": "4711"}) as response:
            assert response.status == 200 and await response.text() == "4711"
            assert response.content_type == "text/plain"
        async with http.get(url, params={**query, "echostr": "4711", "signature": "0" * 40}) as r:
            assert r.status == 403

        query, body = user.signed_query(user.text_xml("你好", 1))
        async with http.post(url, params=query, data=body) as response:
            assert response.status == 200
            reply = user.read_reply(await response.read(), query)
        assert reply is not None and reply["Content"] == "答：你好"

        async with http.post(url, params=query, data=body) as response:  # WeChat's retry
            assert await response.text() == "success"
        assert agent.texts == ["你好"]

        query, body = user.signed_query(user.image_xml(2))
        async with http.post(url, params=query, data=body) as response:
            reply = user.read_reply(await response.read(), query)
        assert reply is not None and reply["Content"] == UNSUPPORTED_MESSAGE
        assert agent.texts == ["你好"]


async def test_a_slow_bot_is_acknowledged_and_pushed(
    serve: Callable[..., Any], tmp_path: Path, api: FakeWeChatAPI
) -> None:
    base, agent = await serve(channel(tmp_path, api, encoding_aes_key=""))
    agent.delay = 1.0
    user = WeChatUser(TOKEN, APP_ID, None, OPENID)
    query, body = user.signed_query(user.text_xml("查物流", 1))
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{base}/webhooks/wechat/webhook", params=query, data=body) as response,
    ):
        assert response.status == 200 and await response.text() == "success"
    message = await asyncio.to_thread(api.wait_for, lambda m: m["touser"] == OPENID, 5)
    assert message["text"]["content"] == "答：查物流"


@pytest.mark.parametrize(("body", "status"), HOSTILE_WECHAT_BODIES)
async def test_hostile_bodies_are_refused(
    serve: Callable[..., Any], tmp_path: Path, api: FakeWeChatAPI, body: bytes, status: int
) -> None:
    base, agent = await serve(channel(tmp_path, api))
    user = WeChatUser(TOKEN, APP_ID, AES_KEY, OPENID)
    query, _ = user.signed_query(user.text_xml("hi", 1))
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{base}/webhooks/wechat/webhook", params=query, data=body) as response,
    ):
        assert response.status == status, await response.text()
    assert agent.texts == []


async def test_a_disabled_channel(serve: Callable[..., Any], tmp_path: Path) -> None:
    base, _ = await serve(WeChatInput.from_credentials({"token": ""}))
    async with aiohttp.ClientSession() as http:
        health = await http.get(f"{base}/webhooks/wechat/")
        assert health.status == 200
        assert await health.json() == {"status": "disabled", "channel": "wechat"}
        for method in ("GET", "POST"):
            response = await http.request(method, f"{base}/webhooks/wechat/webhook")
            assert response.status == 404
            assert "not configured" in (await response.json())["error"]
