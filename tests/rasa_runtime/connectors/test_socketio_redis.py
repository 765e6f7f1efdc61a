"""Two socket.io servers (two "Rasa instances") on one real redis-server.

A customer's socket is connected to instance A; a reply sent by instance B (the agent's
reply through Rasa's HTTP API lands on any instance) reaches it. What travels through
Redis is JSON: a pickled message on the channel is dropped, never unpickled.
"""

from __future__ import annotations

import asyncio
import json
import pickle
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sanic import Sanic

from connectors.socketio import KefuSocketIOInput
from connectors.socketio_redis import CHANNEL, JsonRedisManager
from kefu_shared.customer_session import new_web_sender
from tests.rasa_runtime.connectors.server import ChannelServer
from tests.rasa_runtime.connectors.test_socketio import Client, channel, token_for
from tests.rasa_runtime.local_servers import RedisServer, require_redis


@pytest.fixture(autouse=True)
def sanic_test_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several Sanic apps in one process (Sanic's touch-up breaks otherwise)."""
    monkeypatch.setattr(Sanic, "test_mode", True)


@pytest.fixture
async def clients() -> AsyncIterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        if client.sio.connected:
            await client.sio.disconnect()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    require_redis()
    with RedisServer() as server:
        yield server.start()


def shared_channel(redis_url: str) -> KefuSocketIOInput:
    made = channel()
    made.redis_url = redis_url
    return made


@pytest.fixture
async def instances(redis_server: RedisServer) -> AsyncIterator[tuple[ChannelServer, ...]]:
    url = redis_server.url(1)
    async with (
        ChannelServer(shared_channel(url)) as first,
        ChannelServer(shared_channel(url)) as second,
    ):
        yield first, second


async def confirmed_client(server: ChannelServer, made: list[Client]) -> tuple[Client, str]:
    client = await Client().connect(server)
    made.append(client)
    sender = new_web_sender()
    await client.sio.emit("session_request", {"session_id": token_for(sender)})
    assert (await client.next())[0] == "session_confirm"
    return client, sender


async def test_a_reply_sent_by_another_instance_reaches_the_socket(
    instances: tuple[ChannelServer, ChannelServer], clients: list[Client]
) -> None:
    first, second = instances
    assert isinstance(first.channel, KefuSocketIOInput)
    assert isinstance(first.channel.sio.manager, JsonRedisManager)
    assert first.channel.sio.manager.subscribed.is_set()  # listening from the start
    client, sender = await confirmed_client(first, clients)

    await client.sio.emit("user_uttered", {"message": "人工客服", "session_id": sender})
    name, reply = await client.next()
    assert (name, reply["text"]) == ("bot_uttered", "echo: 人工客服")  # own turns still work

    output = second.channel.get_output_channel()  # what Rasa's HTTP API uses on instance B
    assert output is not None
    await output.send_text_message(sender, "客服小李：您好，我来帮您处理")
    name, reply = await client.next()
    assert (name, reply["text"]) == ("bot_uttered", "客服小李：您好，我来帮您处理")
    other, _ = await confirmed_client(second, clients)
    assert await other.none_within(0.3)  # only the customer's room gets it


async def test_without_redis_another_instance_cannot_reach_the_socket(
    clients: list[Client],
) -> None:
    async with ChannelServer(channel()) as first, ChannelServer(channel()) as second:
        client, sender = await confirmed_client(first, clients)
        output = second.channel.get_output_channel()
        assert output is not None
        await output.send_text_message(sender, "lost")
        assert await client.none_within(0.5)


async def test_with_redis_down_an_instance_still_reaches_its_own_sockets(
    clients: list[Client],
) -> None:
    require_redis()
    with RedisServer() as redis_server:
        url = redis_server.start().url(1)
        async with ChannelServer(shared_channel(url)) as only:
            client, sender = await confirmed_client(only, clients)
            await asyncio.to_thread(redis_server.stop)
            output = only.channel.get_output_channel()
            assert output is not None
            await output.send_text_message(sender, "Redis 停了也能收到")
            name, reply = await client.next(timeout=15)
            assert (name, reply["text"]) == ("bot_uttered", "Redis 停了也能收到")


class _Exploit:
    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (Path("/tmp/kefu-socketio-pickle-ran"), "ran"))


async def test_only_json_objects_are_accepted_from_redis(
    instances: tuple[ChannelServer, ChannelServer],
    clients: list[Client],
    redis_server: RedisServer,
) -> None:
    first, _ = instances
    client, sender = await confirmed_client(first, clients)
    marker = Path("/tmp/kefu-socketio-pickle-ran")
    marker.unlink(missing_ok=True)
    emit = {"method": "emit", "event": "bot_uttered", "namespace": "/", "room": sender}
    publisher = redis.Redis(host="127.0.0.1", port=redis_server.port, db=1)
    try:
        publisher.publish(CHANNEL, pickle.dumps({**emit, "data": {"text": "pickled"}}))
        publisher.publish(CHANNEL, pickle.dumps(_Exploit()))
        publisher.publish(CHANNEL, b"[1, 2]")
        publisher.publish(CHANNEL, json.dumps({**emit, "data": {"text": "json"}}))
    finally:
        publisher.close()
    name, reply = await client.next()
    assert (name, reply) == ("bot_uttered", {"text": "json"})
    assert await client.none_within(0.3)
    assert not marker.exists(), "a pickle from Redis was unpickled"


def test_the_redis_url_comes_from_the_credentials() -> None:
    made = KefuSocketIOInput.from_credentials(
        {"session_secret": "x" * 32, "redis_url": " redis://127.0.0.1:6379/1 "}
    )
    assert isinstance(made, KefuSocketIOInput) and made.redis_url == "redis://127.0.0.1:6379/1"
    plain = KefuSocketIOInput.from_credentials({"session_secret": "x" * 32, "redis_url": ""})
    assert isinstance(plain, KefuSocketIOInput) and plain.redis_url == ""
