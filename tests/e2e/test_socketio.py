"""The web chat's socket.io channel: a real client, malformed events, a raw bad packet."""

from __future__ import annotations

import queue
import uuid

import httpx
import pytest
import socketio

from bot.core.settings import Settings

pytestmark = pytest.mark.e2e


@pytest.fixture
def client(stack: Settings):  # type: ignore[no-untyped-def]
    sio = socketio.Client(reconnection=False)
    replies: queue.Queue[dict] = queue.Queue()
    confirmed: queue.Queue[str] = queue.Queue()
    sio.on("bot_uttered", replies.put)
    sio.on("session_confirm", confirmed.put)
    sio.connect(stack.rasa_url, socketio_path="/socket.io", transports=["polling"])
    yield sio, replies, confirmed
    sio.disconnect()


def test_session_and_bilingual_replies(client) -> None:  # type: ignore[no-untyped-def]
    sio, replies, confirmed = client
    session_id = uuid.uuid4().hex
    sio.emit("session_request", {"session_id": session_id})
    assert confirmed.get(timeout=10) == session_id
    sio.emit("user_uttered", {"message": "你好", "session_id": session_id, "customData": {}})
    assert "您好" in replies.get(timeout=30)["text"]


def test_malformed_events_are_ignored_and_the_channel_keeps_working(client) -> None:  # type: ignore[no-untyped-def]
    sio, replies, confirmed = client
    sio.emit("session_request", "not a dict")
    session_id = confirmed.get(timeout=10)
    assert len(session_id) == 32  # a fresh id instead of a crash
    for bad in [
        "text",
        [1, 2],
        {"message": 5, "session_id": session_id},
        {"message": "hi"},
        {"message": "hi", "session_id": "../../etc"},
    ]:
        sio.emit("user_uttered", bad)
    sio.emit(
        "user_uttered", {"message": "hello", "session_id": session_id, "customData": "{bad json"}
    )
    assert "Hi" in replies.get(timeout=30)["text"] or "Hello" in replies.get(timeout=30)["text"]
    with pytest.raises(queue.Empty):
        replies.get(timeout=2)  # nothing answered the malformed events


def test_a_garbage_polling_packet_is_a_client_error(stack: Settings) -> None:
    handshake = httpx.get(
        f"{stack.rasa_url}/socket.io/", params={"EIO": "4", "transport": "polling"}
    )
    assert handshake.status_code == 200
    response = httpx.post(
        f"{stack.rasa_url}/socket.io/",
        params={"EIO": "4", "transport": "polling", "sid": "nonexistent"},
        content=b"\xff\xfe garbage",
    )
    assert 400 <= response.status_code < 500
