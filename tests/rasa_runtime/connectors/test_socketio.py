"""The web chat's socket.io channel: only a verified session token gets a session and a room."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import socketio
from sanic import Sanic

from connectors.socketio import SESSION_ERROR_EVENT, KefuSocketIOInput
from kefu_shared.customer_session import issue, new_web_sender
from tests.rasa_runtime.connectors.server import ChannelServer

SECRET = "socketio-test-secret-0123456789"


@pytest.fixture(autouse=True)
def sanic_test_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several Sanic apps in one process (Sanic's touch-up breaks otherwise)."""
    monkeypatch.setattr(Sanic, "test_mode", True)


def channel(secret: str = SECRET) -> KefuSocketIOInput:
    made = KefuSocketIOInput.from_credentials(
        {
            "user_message_evt": "user_uttered",
            "bot_message_evt": "bot_uttered",
            "session_persistence": True,
            "metadata_key": "customData",
            "session_secret": secret,
        }
    )
    assert isinstance(made, KefuSocketIOInput)
    return made


def token_for(sender: str, lifetime: float = 3600) -> str:
    return issue(sender, SECRET, lifetime, time.time())


class Client:
    """A python-socketio client recording what the server emits."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        for name in ("session_confirm", "bot_uttered", SESSION_ERROR_EVENT, "disconnect"):
            self.sio.on(name, self._recorder(name))

    def _recorder(self, name: str) -> Any:
        async def record(data: Any = None) -> None:
            await self.events.put((name, data))

        return record

    async def connect(self, server: ChannelServer) -> Client:
        await self.sio.connect(server.url, socketio_path="/socket.io", transports=["polling"])
        return self

    async def next(self, timeout: float = 5) -> tuple[str, Any]:
        return await asyncio.wait_for(self.events.get(), timeout)

    async def none_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.events.get(), seconds)
        except asyncio.TimeoutError:
            return True
        return False


@pytest.fixture
async def server() -> AsyncIterator[ChannelServer]:
    async with ChannelServer(channel()) as running:
        yield running


@pytest.fixture
async def clients() -> AsyncIterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        if client.sio.connected:
            await client.sio.disconnect()


async def new_client(server: ChannelServer, clients: list[Client]) -> Client:
    client = await Client().connect(server)
    clients.append(client)
    return client


async def test_a_valid_token_gets_its_senders_session(
    server: ChannelServer, clients: list[Client]
) -> None:
    client = await new_client(server, clients)
    sender = new_web_sender()
    token = token_for(sender)
    await client.sio.emit("session_request", {"session_id": token})
    assert await client.next() == ("session_confirm", {"session_id": sender, "sender": sender})
    await client.sio.emit(
        "user_uttered",
        {"message": "你好", "session_id": "someone-else", "customData": {"channel": "web"}},
    )
    name, reply = await client.next()
    assert name == "bot_uttered" and reply["text"] == "echo: 你好"
    (message,) = server.received
    assert message.sender_id == sender and message.input_channel == "socketio"
    assert message.metadata == {"channel": "web"}


async def test_the_token_may_come_in_custom_data(
    server: ChannelServer, clients: list[Client]
) -> None:
    client = await new_client(server, clients)
    sender = new_web_sender()
    await client.sio.emit("session_request", {"customData": {"token": token_for(sender)}})
    name, confirmed = await client.next()
    assert name == "session_confirm" and confirmed["sender"] == sender


@pytest.mark.parametrize(
    "request_data",
    [
        None,
        "not a dict",
        {},
        {"session_id": "0123456789abcdef0123456789abcdef"},  # a client-chosen id
        {"session_id": "web:0123456789abcdef0123456789abcdef"},
        {"session_id": issue(new_web_sender(), "another secret entirely!!", 3600, time.time())},
        {"session_id": issue(new_web_sender(), SECRET, 10, time.time() - 60)},  # expired
        {"session_id": "v1." + "a" * 5000},
    ],
)
async def test_no_valid_token_no_session(
    server: ChannelServer, clients: list[Client], request_data: Any
) -> None:
    client = await new_client(server, clients)
    await client.sio.emit("session_request", request_data)
    name, error = await client.next()
    assert name == SESSION_ERROR_EVENT and error["error"] in {"missing_token", "invalid_token"}
    assert (await client.next())[0] == "disconnect"
    assert server.received == []


async def test_messages_without_a_session_are_ignored(
    server: ChannelServer, clients: list[Client]
) -> None:
    client = await new_client(server, clients)
    victim = new_web_sender()
    await client.sio.emit("user_uttered", {"message": "hi", "session_id": victim})
    await client.sio.emit("user_uttered", {"message": "hi", "session_id": token_for(victim)})
    assert await client.none_within(1)
    assert server.received == []


async def test_a_client_cannot_see_another_senders_replies(
    server: ChannelServer, clients: list[Client]
) -> None:
    alice, mallory = await new_client(server, clients), await new_client(server, clients)
    alice_sender, mallory_sender = new_web_sender(), new_web_sender()
    await alice.sio.emit("session_request", {"session_id": token_for(alice_sender)})
    await mallory.sio.emit("session_request", {"session_id": token_for(mallory_sender)})
    assert (await alice.next())[0] == (await mallory.next())[0] == "session_confirm"
    await alice.sio.emit("user_uttered", {"message": "my order", "session_id": "x"})
    assert (await alice.next())[1]["text"] == "echo: my order"
    assert await mallory.none_within(1)  # not in Alice's room
    # switching a confirmed socket to another sender ends it
    await mallory.sio.emit("session_request", {"session_id": token_for(alice_sender)})
    name, error = await mallory.next()
    assert name == SESSION_ERROR_EVENT and error["error"] == "sender_changed"


async def test_an_expired_session_needs_a_renewed_token(
    server: ChannelServer, clients: list[Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await new_client(server, clients)
    sender = new_web_sender()
    await client.sio.emit("session_request", {"session_id": token_for(sender, lifetime=60)})
    assert (await client.next())[0] == "session_confirm"
    later = time.time() + 120
    monkeypatch.setattr("connectors.socketio.time.time", lambda: later)
    renewed = issue(sender, SECRET, 3600, later)
    await client.sio.emit("user_uttered", {"message": "still me", "session_id": renewed})
    assert (await client.next())[1]["text"] == "echo: still me"
    monkeypatch.setattr("connectors.socketio.time.time", lambda: later + 7200)
    await client.sio.emit("user_uttered", {"message": "too late", "session_id": renewed})
    name, error = await client.next()
    assert name == SESSION_ERROR_EVENT and error["error"] == "expired_token"
    assert [m.text for m in server.received] == ["still me"]


async def test_without_a_secret_every_session_is_refused(clients: list[Client]) -> None:
    async with ChannelServer(channel(secret="")) as server:
        client = await new_client(server, clients)
        await client.sio.emit("session_request", {"session_id": token_for(new_web_sender())})
        assert (await client.next())[0] == SESSION_ERROR_EVENT
